import type { Routing } from "../core/routing/routing.js";
import { EplbFormatError } from "../io/errors.js";
import { MAX_ROUTING_ENTRIES, readRoutingFiles } from "../io/routing.js";
import type { Flags } from "./args.js";
import { UsageError } from "./command.js";
import { located, unreadableAsUsage } from "./inputs.js";

/** The `--routing` flag of plan, eval and report: repeatable, files or folders. */
export const ROUTING_OPTIONS = { routing: { type: "string", multiple: true } } as const;

/** Help text lines for {@link ROUTING_OPTIONS}. */
export const ROUTING_HELP = `  --routing FILE|DIR
                 per-token routing, for the dispatch figures (remote nodes per token,
                 cross-node share, node-to-node traffic; docs/locality.md): .npy integer
                 expert ids [tokens, layers, k] (-1 = no choice; repeat for more tokens),
                 or SGLang per_token dumps (files or a folder; each token's rank kept).
                 Ids must be experts of the loads; at most ${MAX_ROUTING_ENTRIES} ids`;

/**
 * The paths of `--routing`, or null when it is absent.
 *
 * @param flags parsed flags
 * @returns the paths in command-line order, or null
 * @throws UsageError for an empty value
 * @example
 * ```ts
 * routingPaths({ routing: ["a.npy", "b.npy"] }); // ["a.npy", "b.npy"]
 * routingPaths({}); // null
 * ```
 */
export function routingPaths(flags: Flags): string[] | null {
  const v = flags.routing;
  if (v === undefined) return null;
  const paths = typeof v === "string" ? [v] : Array.isArray(v) ? v : [];
  if (paths.length === 0 || paths.some((p) => p === "")) {
    throw new UsageError("--routing needs a file or folder");
  }
  return paths;
}

/**
 * Reads `--routing` for a command whose loads are already read: the routing must have the
 * loads' layers, and its ids must be experts of the loads (refused in one line otherwise).
 *
 * @param flags parsed flags
 * @param cwd the command's working directory
 * @param loads the loads' shape
 * @param stderr where a `warning: ...` line goes (SGLang dumps whose ranks recorded the same
 *   tokens: each token is read once, with no source rank)
 * @returns the routing, or null without `--routing`
 * @throws UsageError for a path that cannot be opened; EplbFormatError for a file that is not a
 *   routing of these loads
 * @example
 * ```ts
 * readRoutingFlag({ routing: ["routing.npy"] }, process.cwd(), { layers: 1, experts: 4 })?.tokens; // 2
 * readRoutingFlag({}, process.cwd(), { layers: 1, experts: 4 }); // null
 * ```
 */
export function readRoutingFlag(
  flags: Flags,
  cwd: string,
  loads: { readonly layers: number; readonly experts: number },
  stderr?: (text: string) => void,
): Routing | null {
  const paths = routingPaths(flags);
  if (!paths) return null;
  const routing = unreadableAsUsage(paths.join(", "), () =>
    readRoutingFiles(
      paths.map((p) => located(p, cwd)),
      loads.experts,
      (text) => stderr?.(`warning: ${text}\n`),
    ),
  );
  if (routing.layers !== loads.layers) {
    throw new EplbFormatError(
      paths[0],
      `routing has ${routing.layers} layers, the loads ${loads.layers}: they must describe the same MoE layers`,
    );
  }
  return routing;
}
