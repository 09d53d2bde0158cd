// Moved to rules/iptables/editor.ts (the iptables backend's folder); kept so that code written
// against the old path (other branches) still builds. New code imports from there.
export * from './iptables/editor.js';
