/**
 * eplb/node: the Node-side entry (file formats, CLI helpers). The isomorphic core is `eplb`.
 */

export { AtomicFile, OutputWriteError, writeFileAtomic } from "./io/atomic-write.js";
export { MAX_CSV_COLUMNS, readCsv } from "./io/csv.js";
export { isLongCsv, readLongCsv } from "./io/csv-long.js";
export { EplbFormatError } from "./io/errors.js";
export {
  type Float64Trace,
  findLoadArray,
  LOAD_KEYS,
  PLACEMENT_KEYS,
  placementFromValue,
  selectSteps,
} from "./io/interpret.js";
export { readJson } from "./io/json.js";
export { classifyValue, loadsFromValue, traceFromValue } from "./io/load-values.js";
export { type NpyHeader, readNpy, readNpyHeader } from "./io/npy.js";
export { type NpyTraceSource, openNpyTrace, readAllSteps } from "./io/npy-stream.js";
export {
  encodeNpy,
  type NpyWriteDType,
  NpyWriter,
  npyHeader,
  writeNpy,
} from "./io/npy-write.js";
export { readNpz } from "./io/npz.js";
export {
  detectFormat,
  FILE_FORMATS,
  type FileFormat,
  type LoadsNote,
  openTraceStream,
  parseBytes,
  type ReadLoadsOptions,
  type ReadOptions,
  type ReadPlacementOptions,
  readLoads,
  readPlacement,
  readTensorFile,
  readTrace,
  readValue,
} from "./io/read.js";
export {
  MAX_ROUTING_ENTRIES,
  openRoutingTrace,
  type RoutingTrace,
  readPassRouting,
  readRoutingFiles,
} from "./io/routing.js";
export { readSafetensors } from "./io/safetensors.js";
export {
  readSglangPassDump,
  type SglangDumpKind,
  type SglangPass,
  type SglangPassDump,
  SglangPassSum,
  sglangDumpKind,
} from "./io/sglang.js";
export { readRouting, type TokenRouting } from "./io/sglang-routing.js";
export {
  describeLoadSource,
  expandLoadPath,
  type LoadSource,
  readLoadSources,
  readRankTraces,
} from "./io/sources.js";
export { type DType, isTensor, MAX_TENSOR_ELEMENTS, type Tensor } from "./io/tensor.js";
export { readLegacyTorch, readTorch } from "./io/torch.js";
export { type Int64TensorInput, torchSaveInt64 } from "./io/torch-write.js";
export {
  describeTrtllmStatistics,
  readTrtllmStatistics,
  type TrtllmStatisticsInfo,
} from "./io/trtllm-statistics.js";
export { type FileObject, type FileValue, isFileObject } from "./io/value.js";
export {
  deepseekPlacementJson,
  formatPlacement,
  isOutputFormat,
  OUTPUT_FORMATS,
  type OutputFormat,
  outputFormatExtension,
  type PlacementWriteOptions,
  sglangPlacementJson,
  sglangPlacementTorch,
  trtllmLoadBalancerYaml,
  vllmAscendExpertMap,
  vllmPlacementJson,
} from "./io/writers.js";
export { readYaml } from "./io/yaml.js";
export { MAX_INFLATED_BYTES, maxInflatedBytes } from "./io/zip.js";
