// Moved to rules/iptables/save.ts (the iptables backend's folder); kept so that code written
// against the old path (other branches) still builds. New code imports from there.
export * from './iptables/save.js';
