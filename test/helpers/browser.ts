import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import Chromium from "@sparticuz/chromium";
import { type Browser, chromium } from "playwright-core";
import { repoRoot } from "./cli.js";

/**
 * Set to `1` to skip the browser tests on purpose (a machine whose Chromium cannot run). The
 * skip is reported by name; without it a browser that cannot be launched fails the suite.
 */
export const SKIP_BROWSER_ENV = "EPLB_SKIP_BROWSER";

/** Flags for a local headless run: no network side channels, no sandbox (CI runs as root). */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Unpacks a plain ustar archive (regular files and folders only: what the Chromium package's
 * library archive holds) into `dir`. The package only unpacks its libraries on AWS Lambda; here
 * they make the binary independent of the system's NSS, so nothing needs a system package.
 */
function untar(tar: Buffer, dir: string): void {
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    const name = header.subarray(0, 100).toString("latin1").replace(/\0.*$/s, "");
    if (name === "") break;
    const size = Number.parseInt(header.subarray(124, 136).toString("latin1").trim() || "0", 8);
    const type = String.fromCharCode(header[156]);
    const body = at + 512;
    const target = join(dir, name);
    if (type === "5") mkdirSync(target, { recursive: true });
    else if (type === "0" || type === "\0") {
      mkdirSync(join(target, ".."), { recursive: true });
      writeFileSync(target, tar.subarray(body, body + size), { mode: 0o755 });
    }
    at = body + Math.ceil(size / 512) * 512;
  }
}

/** The bundled shared libraries (NSS, expat) unpacked once per package version. */
function bundledLibraries(): string {
  const pkgDir = join(repoRoot, "node_modules", "@sparticuz", "chromium");
  const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version as string;
  const dir = join(tmpdir(), `eplb-chromium-libs-${version}`);
  if (!existsSync(join(dir, "lib", "libnss3.so"))) {
    // Unpack beside the target and rename, so a concurrent run never sees half a folder.
    const staging = `${dir}.${process.pid}`;
    untar(brotliDecompressSync(readFileSync(join(pkgDir, "bin", "al2023.tar.br"))), staging);
    try {
      renameSync(staging, dir);
    } catch {
      // Another process won the race: its copy is complete.
    }
  }
  return join(dir, "lib");
}

/**
 * Launches headless Chromium for the report tests, with nothing beyond `npm ci`: the Chromium
 * build that ships inside the `@sparticuz/chromium` dev dependency (unpacked into the temp folder
 * on first use, with its own NSS libraries), whatever the system has installed, so the suite
 * runs the same everywhere; `EPLB_CHROMIUM=/path` runs another Chromium instead (Debian's
 * `/usr/bin/chromium`, say).
 *
 * @returns the browser and a one-line description of which Chromium runs
 * @throws Error when no Chromium can be launched (the browser tests then fail, never skip)
 * @example
 * ```ts
 * const { browser } = await launchChromium();
 * ```
 */
export async function launchChromium(): Promise<{ browser: Browser; source: string }> {
  const explicit = process.env.EPLB_CHROMIUM;
  if (explicit) {
    return {
      browser: await chromium.launch({ executablePath: explicit, args: ARGS }),
      source: explicit,
    };
  }
  const executablePath = await Chromium.executablePath();
  const libs = bundledLibraries();
  const inherited = process.env.LD_LIBRARY_PATH;
  const env = {
    ...process.env,
    LD_LIBRARY_PATH: inherited ? `${libs}:${inherited}` : libs,
    // The package's own fonts: text renders the same on a machine without any.
    FONTCONFIG_PATH: join(tmpdir(), "fonts"),
  };
  const browser = await chromium.launch({ executablePath, args: ARGS, env });
  return { browser, source: `@sparticuz/chromium (${executablePath})` };
}
