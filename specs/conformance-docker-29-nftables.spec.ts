// Every scenario under the reference engine's docker-29-nftables profile: Docker 29 with its
// nftables firewall backend (see support/profile-conformance.ts).
import { defineProfileConformance } from './support/profile-conformance.js';

defineProfileConformance('docker-29-nftables');
