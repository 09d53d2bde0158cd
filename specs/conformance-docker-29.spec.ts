// Every scenario under the reference engine's docker-29 profile (see support/profile-conformance.ts).
import { defineProfileConformance } from './support/profile-conformance.js';

defineProfileConformance('docker-29');
