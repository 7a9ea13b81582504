import type { MigrationOptions } from "../migration/options.js";
import { EplbInputError } from "../model/errors.js";
import type { Policy } from "./policy.js";

/** Fields of `rebalanceExperts`' options that are not a policy's own. */
const COMMON_OPTIONS = [
  "policy",
  "previous",
  "distinctPerGpu",
  "routing",
  "localityTolerance",
  "localityGain",
] as const;

/** Fields of {@link MigrationOptions}, read when rebalancing from a previous placement. */
const MIGRATION_OPTIONS = [
  "moveBudget",
  "minGain",
  "tolerance",
  "slotGain",
  "relaxedHierarchy",
  "compareRelabelled",
] as const satisfies readonly (keyof MigrationOptions)[];

// A new field of MigrationOptions must be listed above, or rebalanceExperts would refuse it.
type Unlisted = Exclude<keyof MigrationOptions, (typeof MIGRATION_OPTIONS)[number]>;
const everyMigrationOptionListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyMigrationOptionListed;

/**
 * Every option name `rebalanceExperts` accepts with `policy`: the common ones, the migration
 * ones and the policy's own (`policy.options`), sorted.
 *
 * @param policy - the policy that will plan.
 * @returns the accepted option names, sorted.
 * @example
 * ```ts
 * knownOptionNames(getPolicy("deepseek")).includes("epsilon"); // false
 * ```
 */
export function knownOptionNames(policy: Policy): string[] {
  const names = new Set<string>([
    ...COMMON_OPTIONS,
    ...MIGRATION_OPTIONS,
    ...(policy.options ?? []),
  ]);
  return [...names].sort();
}

/**
 * Refuses an options object with a field no part of the planning reads: a misspelt option would
 * otherwise be ignored and the plan silently made without it. Fields whose value is `undefined`
 * pass (spreading optional settings is common).
 *
 * @param options - the options object given to `rebalanceExperts`.
 * @param policy - the policy that will plan.
 * @throws {EplbInputError} naming the unknown option, the policy and the known options.
 * @example
 * ```ts
 * checkOptionNames({ epsilon: 1e-3 }, getPolicy("balanced")); // passes
 * checkOptionNames({ epsilonn: 1e-3 }, getPolicy("balanced")); // throws EplbInputError
 * ```
 */
export function checkOptionNames(options: object, policy: Policy): void {
  let known: Set<string> | undefined;
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    known ??= new Set(knownOptionNames(policy));
    if (known.has(name)) continue;
    throw new EplbInputError(
      "options",
      name,
      `is not an option of the ${policy.name} policy; known options: ${[...known].join(", ")}`,
    );
  }
}
