import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['specs/**/*.spec.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Lab specs are I/O bound on a 2-core machine; two workers keep the kernel busy enough.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
