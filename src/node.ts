/**
 * eplb/node: the Node-side entry (file formats, CLI helpers). The isomorphic core is `eplb`.
 */

export { AtomicFile, OutputWriteError, writeFileAtomic } from "./io/atomic-write.js";
export { MAX_CSV_COLUMNS, readCsv } from "./io/csv.js";
export { EplbFormatError } from "./io/errors.js";
export {
  classifyValue,
  type Float64Trace,
  findLoadArray,
  LOAD_KEYS,
  loadsFromValue,
  PLACEMENT_KEYS,
  placementFromValue,
  selectSteps,
  traceFromValue,
} from "./io/interpret.js";
export { readJson } from "./io/json.js";
export { type NpyHeader, readNpy, readNpyHeader } from "./io/npy.js";
export { type NpyTraceSource, openNpyTrace, readAllSteps } from "./io/npy-stream.js";
export {
  encodeNpy,
  type NpyWriteDType,
  NpyWriter,
  npyHeader,
  writeNpy,
} from "./io/npy-write.js";
export {
  detectFormat,
  FILE_FORMATS,
  type FileFormat,
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
export { readSafetensors } from "./io/safetensors.js";
export { type DType, isTensor, MAX_TENSOR_ELEMENTS, type Tensor } from "./io/tensor.js";
export { readTorch } from "./io/torch.js";
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
  trtllmLoadBalancerYaml,
  vllmAscendExpertMap,
  vllmPlacementJson,
} from "./io/writers.js";
export { readYaml } from "./io/yaml.js";
export { MAX_INFLATED_BYTES, maxInflatedBytes } from "./io/zip.js";
