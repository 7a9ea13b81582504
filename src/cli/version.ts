import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The package version, read from package.json beside the build (`eplb --version`, and the
 * generator line of `eplb report`). Its own module so that a command needing it does not import
 * the command table back (main.ts imports every command).
 *
 * @returns the version, or "unknown" when no eplb package.json is found
 * @example
 * ```ts
 * packageVersion(); // "0.1.0"
 * ```
 */
export function packageVersion(): string {
  for (const rel of ["../../../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(fileURLToPath(new URL(rel, import.meta.url)), "utf8"));
      if (pkg.name === "eplb") return String(pkg.version);
    } catch {
      // try the next candidate location
    }
  }
  return "unknown";
}
