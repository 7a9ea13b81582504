// Replica counts: how many replicas each expert gets, searched jointly with the packing.
export { estimateMaxLoad } from "./estimate.js";
export { homeAwareCounts } from "./home-aware.js";
export { type CountSearchOptions, searchReplicaCounts } from "./search.js";
export { CountsWorkspace } from "./workspace.js";
