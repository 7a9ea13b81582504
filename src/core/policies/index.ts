import { EplbInputError } from "../model/errors.js";
import { balancedPolicy } from "./balanced.js";
import { deepseekPolicy } from "./deepseek.js";
import type { Policy } from "./policy.js";

/** Every policy by name; a new policy is one module plus one entry here. */
const registry = new Map<string, Policy>([
  [balancedPolicy.name, balancedPolicy],
  [deepseekPolicy.name, deepseekPolicy],
]);

/** The policy `rebalanceExperts` and the CLI use when none is named. */
export const DEFAULT_POLICY = "balanced";

/**
 * Names of the available policies, default first.
 *
 * @example
 * ```ts
 * policyNames(); // ["balanced", "deepseek"]
 * ```
 */
export function policyNames(): string[] {
  return [DEFAULT_POLICY, ...[...registry.keys()].filter((n) => n !== DEFAULT_POLICY)];
}

/**
 * Looks a policy up by name; an unknown name is an {@link EplbInputError} listing the known ones.
 *
 * @example
 * ```ts
 * getPolicy("deepseek").name; // "deepseek"
 * getPolicy("nope"); // throws EplbInputError: policy ("nope") must be one of: balanced, deepseek
 * ```
 */
export function getPolicy(name: string): Policy {
  const policy = registry.get(name);
  if (!policy) {
    throw new EplbInputError("policy", name, `must be one of: ${policyNames().join(", ")}`);
  }
  return policy;
}

/**
 * Adds a policy (or replaces one of the same name), for users composing their own. The policy
 * lists the option fields it reads in `options`; `rebalanceExperts` refuses any other.
 *
 * @param policy - the policy; `options`, when given, is an array of option names.
 * @throws {EplbInputError} when `options` is not an array of strings.
 * @example
 * ```ts
 * registerPolicy({ name: "mine", description: "...", plan: (loads, t) => planDeepseek(loads, t) });
 * rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2, { policy: "mine" }).phy2log; // [[1, 1, 0, 2, 3, 3]]
 * ```
 */
export function registerPolicy(policy: Policy): void {
  const { options } = policy;
  if (
    options !== undefined &&
    !(Array.isArray(options) && options.every((o) => typeof o === "string"))
  ) {
    throw new EplbInputError(
      `policy ${policy.name}: options`,
      options,
      "must be an array of option names",
    );
  }
  registry.set(policy.name, policy);
}
