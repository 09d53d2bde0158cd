// Moved to rules/iptables/listing.ts and rules/textdiff.ts; kept so that code written against
// the old path (other branches) still builds. New code imports from there.
export * from './iptables/listing.js';
export { listingDiff } from './textdiff.js';
