import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

/**
 * A fresh temporary folder, removed after the test file, and a writer of uniquely named files in
 * it (a counter prefix, so one name may be used many times).
 *
 * @example
 * ```ts
 * const { dir, file } = tempFiles("eplb-x-");
 * const path = file("loads.json", "[[1, 2]]"); // <dir>/0-loads.json
 * ```
 */
export function tempFiles(prefix: string): {
  dir: string;
  file(name: string, content: string | Uint8Array): string;
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let counter = 0;
  return {
    dir,
    file(name, content) {
      const path = join(dir, `${counter++}-${name}`);
      writeFileSync(path, content);
      return path;
    },
  };
}
