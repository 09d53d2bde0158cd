// A unified diff of two rule listings (whole rule sets, chains), expected first: what every
// rule comparison of the harness prints when two sides differ.
import { createTwoFilesPatch } from 'diff';

/** The diff of two texts with their labels, or undefined when they are equal. */
export function listingDiff(expected: string, actual: string, labels: { expected: string; actual: string }, context = 3): string | undefined {
  if (expected === actual) return undefined;
  const patch = createTwoFilesPatch(labels.expected, labels.actual, expected, actual, '', '', { context });
  // drop the "====" banner; keep the ---/+++ header that says which side is which
  return patch
    .split('\n')
    .filter((l) => !/^(Index: |={10,})/.test(l))
    .map((l) => l.replace(/\t$/, ''))
    .join('\n')
    .trimEnd();
}
