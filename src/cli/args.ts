import { type ParseArgsConfig, parseArgs } from "node:util";
import { checkShapeLimits, shapeLimitsText } from "../core/model/limits.js";
import { UsageError } from "./command.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parsed flags: strings, booleans or (for `multiple: true`) arrays of strings. */
export type Flags = Record<string, string | boolean | string[] | undefined>;

/**
 * `node:util` parseArgs in strict mode, with its errors turned into one-line {@link UsageError}s
 * that name the command.
 *
 * @example
 * ```ts
 * parseFlags("plan", ["--gpus", "8"], { gpus: { type: "string" } }); // { gpus: "8" }
 * parseFlags("plan", ["--gpu", "8"], { gpus: { type: "string" } });
 * // throws UsageError: unknown option --gpu (see eplb plan --help)
 * ```
 */
export function parseFlags(command: string, argv: string[], options: Options): Flags {
  try {
    const { values, positionals, tokens } = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals: true,
      tokens: true,
    });
    if (positionals.length > 0) {
      throw new UsageError(
        `unexpected argument ${JSON.stringify(positionals[0])} (see eplb ${command} --help)`,
      );
    }
    checkTokens(command, tokens, options);
    return values as Flags;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) throw new UsageError(`unknown option ${unknown[1]} (see eplb ${command} --help)`);
    const ambiguous = /Option '([^']+)' argument is ambiguous/.exec(message);
    if (ambiguous) {
      const flag = ambiguous[1];
      throw new UsageError(
        `${flag} needs a value; to give one that starts with "-", write ${flag}=-VALUE (see eplb ${command} --help)`,
      );
    }
    throw new UsageError(`${message.split("\n")[0]} (see eplb ${command} --help)`);
  }
}

/**
 * Refuses what parseArgs accepts silently: a single-valued flag given twice (parseArgs keeps the
 * last, so `--replicas 8 --replicas 16` would plan for 16 without a word; flags declared
 * `multiple: true` are meant to repeat) and a value with leading or trailing white space
 * (`--replicas " 16"` from a careless quote, or a path that would then not be found).
 */
function checkTokens(
  command: string,
  tokens: ReadonlyArray<{ kind: string; name?: string; rawName?: string; value?: string }>,
  options: Options,
): void {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option" || token.name === undefined) continue;
    const name = token.name;
    const option = Object.hasOwn(options, name) ? options[name] : undefined;
    if (!option?.multiple) {
      if (seen.has(name)) {
        throw new UsageError(`--${name} is given twice; give it once (see eplb ${command} --help)`);
      }
      seen.add(name);
    }
    const value = token.value;
    if (typeof value === "string" && value !== value.trim()) {
      throw new UsageError(
        `--${name} (${JSON.stringify(value)}) has stray spaces around its value`,
      );
    }
  }
}

/**
 * A flag's string value; a missing required flag is a {@link UsageError}.
 *
 * @example
 * ```ts
 * requireString({ loads: "a.json" }, "loads"); // "a.json"
 * ```
 */
export function requireString(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} is required`);
  return v;
}

/**
 * A flag's value as an integer >= `min` (or `fallback` when absent and a fallback is given).
 *
 * @example
 * ```ts
 * integerFlag({ gpus: "8" }, "gpus", 1); // 8
 * integerFlag({ gpus: "8x" }, "gpus", 1); // throws: --gpus ("8x") must be an integer >= 1
 * ```
 */
export function integerFlag(flags: Flags, name: string, min: number, fallback?: number): number {
  const v = flags[name];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`--${name} is required`);
  }
  if (typeof v !== "string" || !/^-?\d+$/.test(v) || Number(v) < min) {
    throw new UsageError(`--${name} (${JSON.stringify(v)}) must be an integer >= ${min}`);
  }
  if (!Number.isSafeInteger(Number(v))) {
    // Number() would round it to a neighbour: refuse rather than plan for another value.
    throw new UsageError(`--${name} (${JSON.stringify(v)}) is beyond 2^53 and cannot be exact`);
  }
  return Number(v);
}

/**
 * A flag's value as a finite number in `[min, max]`, or `fallback` when absent.
 *
 * @example
 * ```ts
 * numberFlag({ "min-gain": "0.01" }, "min-gain", 0, 1, 0); // 0.01
 * ```
 */
export function numberFlag(
  flags: Flags,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = typeof v === "string" && v !== "" && v === v.trim() ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} (${JSON.stringify(v)}) must be a number in [${min}, ${max}]`);
  }
  return n;
}

/** The `--replicas --groups --nodes --gpus` flags every planning command takes. */
export const TOPOLOGY_OPTIONS = {
  replicas: { type: "string" },
  groups: { type: "string" },
  nodes: { type: "string" },
  gpus: { type: "string" },
} as const satisfies Options;

/** Help text lines for {@link TOPOLOGY_OPTIONS}. */
export const TOPOLOGY_HELP = `  --replicas N   physical slots per layer (numReplicas); >= experts, a multiple of --gpus
  --groups N     expert groups (numGroups); divides the expert count [default 1]
  --nodes N      nodes (numNodes); divides --gpus [default 1]
  --gpus N       GPUs (numGpus); divides --replicas
${wrapHelp(`largest shape planned, far above any engine's: ${shapeLimitsText()}`, "                 ")}`;

/** Wraps `text` at 100 columns, each line after `indent`. */
function wrapHelp(text: string, indent: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent.length + line.length + 1 + word.length > 100) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(indent + line);
  return lines.join("\n");
}

/**
 * Reads the four topology flags; groups and nodes default to 1.
 *
 * @example
 * ```ts
 * topologyFlags({ replicas: "16", gpus: "8" }); // { numReplicas: 16, numGroups: 1, numNodes: 1, numGpus: 8 }
 * ```
 */
export function topologyFlags(flags: Flags): {
  numReplicas: number;
  numGroups: number;
  numNodes: number;
  numGpus: number;
} {
  const topology = {
    numReplicas: integerFlag(flags, "replicas", 1),
    numGroups: integerFlag(flags, "groups", 1, 1),
    numNodes: integerFlag(flags, "nodes", 1, 1),
    numGpus: integerFlag(flags, "gpus", 1),
  };
  checkTopologyFlagLimits(topology);
  return topology;
}

/** The CLI's names of the shape parameters, for {@link checkShapeLimits} messages. */
export const FLAG_SHAPE_NAMES = {
  layers: "layers",
  experts: "experts",
  replicas: "--replicas",
  groups: "--groups",
  nodes: "--nodes",
  gpus: "--gpus",
};

/**
 * Refuses topology flags beyond the largest shape eplb plans, before any file is read, naming
 * the flag.
 *
 * @throws EplbInputError naming the flag, its value and the limit
 * @example
 * ```ts
 * checkTopologyFlagLimits({ numReplicas: 1e9, numGroups: 1, numNodes: 1, numGpus: 8 });
 * // throws: --replicas (1000000000) must be at most 65536 (the largest shape eplb plans)
 * ```
 */
export function checkTopologyFlagLimits(t: {
  numReplicas?: number;
  numGroups?: number;
  numNodes?: number;
  numGpus?: number;
}): void {
  checkShapeLimits(
    { replicas: t.numReplicas, groups: t.numGroups, nodes: t.numNodes, gpus: t.numGpus },
    FLAG_SHAPE_NAMES,
  );
}
