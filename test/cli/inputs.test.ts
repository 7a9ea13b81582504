/** src/cli/inputs.ts: how commands find, name and read their input files, and refuse bad flags. */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import {
  fileFormatFlag,
  joinStepsValue,
  loadsInputFlags,
  loadsPaths,
  located,
  placementFileGpus,
  readLoadsFile,
  readLoadsInput,
  readPlacementFile,
  unreadableAsUsage,
  warnOnStderr,
} from "../../src/cli/inputs.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { FILE_FORMATS } from "../../src/io/read.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

const { dir, file } = tempFiles("eplb-inputs-");
const loadsFile = file("loads.json", "[[1, 2, 3, 4], [4, 3, 2, 1]]");
const loadsName = loadsFile.slice(dir.length + 1);
const rank1 = file("rank1.json", "[[10, 0, 0, 0], [0, 0, 0, 10]]").slice(dir.length + 1);

describe("located", () => {
  test("an absolute path as it is; a relative one against the command's cwd", () => {
    assert.equal(located("/data/a.npy", "/tmp"), "/data/a.npy");
    assert.equal(located("a.npy", "/data"), "/data/a.npy");
    // Relative to the process's own cwd: left relative (messages show what the user typed).
    assert.equal(located("a.npy", process.cwd()), "a.npy");
  });
});

describe("joinStepsValue", () => {
  test("glues a slice starting with - to --steps, so that parseArgs takes it as the value", () => {
    for (const slice of ["-100:", "-1", "-10:-2", "-10:-2:2", "-:"]) {
      assert.deepEqual(joinStepsValue(["--steps", slice, "--gpus", "8"]), [
        `--steps=${slice}`,
        "--gpus",
        "8",
      ]);
    }
  });

  test("leaves everything else alone: other slices, a flag after --steps, other flags' values", () => {
    for (const argv of [
      ["--steps", "0:50"],
      ["--steps", "--gpus", "8"],
      ["--steps"],
      ["--key", "-100:"],
      ["--steps", "-x"],
      ["--steps=-1:"],
    ]) {
      assert.deepEqual(joinStepsValue(argv), argv);
    }
  });
});

describe("fileFormatFlag", () => {
  test("absent: undefined; a reader's format: itself", () => {
    assert.equal(fileFormatFlag({}, "format"), undefined);
    for (const f of FILE_FORMATS) assert.equal(fileFormatFlag({ format: f }, "format"), f);
  });

  test("anything else refused, naming the flag, the value and the formats", () => {
    assertRefused(
      () => fileFormatFlag({ "previous-format": "xls" }, "previous-format"),
      UsageError,
      `--previous-format ("xls") must be one of ${FILE_FORMATS.join(", ")}`,
    );
    assertRefused(
      () => fileFormatFlag({ format: true }, "format"),
      UsageError,
      /^--format \(true\)/,
    );
  });
});

describe("loadsPaths", () => {
  test("one path or several, in command-line order, under any flag name", () => {
    assert.deepEqual(loadsPaths({ loads: "a.pt" }), ["a.pt"]);
    assert.deepEqual(loadsPaths({ loads: ["b.pt", "a.pt"] }), ["b.pt", "a.pt"]);
    assert.deepEqual(loadsPaths({ trace: ["t.npy"] }, "trace"), ["t.npy"]);
  });

  test("missing or empty is refused in one line naming the flag", () => {
    assertRefused(() => loadsPaths({}), UsageError, "--loads is required");
    assertRefused(() => loadsPaths({ loads: [] }), UsageError, "--loads is required");
    assertRefused(() => loadsPaths({ loads: ["a.pt", ""] }), UsageError, "--loads is required");
    assertRefused(() => loadsPaths({ loads: "a.pt" }, "trace"), UsageError, "--trace is required");
  });
});

describe("loadsInputFlags", () => {
  test("maps the four flags onto the readers' options", () => {
    assert.deepEqual(
      loadsInputFlags({ format: "npy", steps: "-10:", key: "hotness", "slot-placement": "p.pt" }),
      { format: "npy", steps: "-10:", key: "hotness", slotPlacement: "p.pt" },
    );
    assert.deepEqual(loadsInputFlags({}), {
      format: undefined,
      steps: undefined,
      key: undefined,
      slotPlacement: undefined,
    });
  });

  test("refuses empty values in one line", () => {
    assertRefused(
      () => loadsInputFlags({ steps: " " }),
      UsageError,
      '--steps must be a slice such as "0:100" or "-50:"',
    );
    assertRefused(() => loadsInputFlags({ key: "" }), UsageError, "--key needs a value");
    assertRefused(
      () => loadsInputFlags({ "slot-placement": "" }),
      UsageError,
      "--slot-placement needs a value",
    );
    assertRefused(() => loadsInputFlags({ format: "xls" }), UsageError, /^--format \("xls"\)/);
  });
});

describe("unreadableAsUsage", () => {
  test("a file that cannot be opened becomes `cannot read PATH: reason`", () => {
    for (const problem of ["no such file", "is a directory", "permission denied"]) {
      assertRefused(
        () =>
          unreadableAsUsage("x.json", () => {
            throw new EplbFormatError("/abs/x.json", problem);
          }),
        UsageError,
        `cannot read x.json: ${problem}`,
      );
    }
  });

  test("of several joined paths, the message names the one that failed", () => {
    assertRefused(
      () =>
        unreadableAsUsage("a.pt, b.pt", () => {
          throw new EplbFormatError("b.pt", "no such file");
        }),
      UsageError,
      "cannot read b.pt: no such file",
    );
  });

  test("broken contents and other errors pass through unchanged; a result is returned", () => {
    const broken = new EplbFormatError("x.json", "not JSON: Unexpected token");
    assert.throws(
      () =>
        unreadableAsUsage("x.json", () => {
          throw broken;
        }),
      (e) => e === broken,
    );
    const bug = new TypeError("bug");
    assert.throws(
      () =>
        unreadableAsUsage("x.json", () => {
          throw bug;
        }),
      (e) => e === bug,
    );
    assert.equal(
      unreadableAsUsage("x", () => 42),
      42,
    );
  });
});

describe("warnOnStderr", () => {
  test("a warning is one `warning:` line; a description is dropped", () => {
    let out = "";
    const onNote = warnOnStderr((t) => {
      out += t;
    });
    onNote?.({ level: "info", text: "3 files summed" });
    onNote?.({ level: "warning", text: "a.json: the loads are all zero" });
    assert.equal(out, "warning: a.json: the loads are all zero\n");
  });
});

describe("reading the files", () => {
  test("relative paths are read from the command's cwd", () => {
    assert.deepEqual([...readLoadsFile(loadsName, dir).data], [1, 2, 3, 4, 4, 3, 2, 1]);
    const summed = readLoadsInput([loadsName, rank1], dir, {});
    assert.deepEqual([...summed.loads.data], [11, 2, 3, 4, 4, 3, 2, 11]);
  });

  test("a missing file is named as the user gave it; a missing slot placement before the loads", () => {
    assertRefused(
      () => readLoadsFile("nope.json", dir),
      UsageError,
      "cannot read nope.json: no such file",
    );
    assertRefused(
      () => readLoadsInput([loadsName, "nope.json"], dir, {}),
      UsageError,
      `cannot read ${join(dir, "nope.json")}: no such file`,
    );
    for (const read of [
      () => readLoadsFile("also-missing.json", dir, { slotPlacement: "slots.pt" }),
      () => readLoadsInput(["also-missing.json"], dir, { slotPlacement: "slots.pt" }),
    ]) {
      assertRefused(read, UsageError, "cannot read slots.pt: no such file");
    }
  });

  test("a placement file from the cwd, and the GPU count only a vllm-ascend map states", () => {
    const phy2log = file("plan.json", JSON.stringify({ phy2log: [[0, 1, 2, 0]] }));
    const name = phy2log.slice(dir.length + 1);
    let stderr = "";
    const ctx = { cwd: dir, stderr: (t: string) => (stderr += t) };
    const p = readPlacementFile(name, ctx, { numExperts: 3 });
    assert.deepEqual([p.layers, p.numReplicas, p.numExperts], [1, 4, 3]);
    assert.equal(stderr, "");
    assert.equal(placementFileGpus(name, dir), undefined);
    const device = (id: number, experts: number[]) => ({ device_id: id, device_expert: experts });
    const map = file(
      "expert_map.json",
      JSON.stringify({
        moe_layer_count: 1,
        layer_list: [
          { layer_id: 0, device_count: 2, device_list: [device(0, [0, 1]), device(1, [2, 0])] },
        ],
      }),
    );
    assert.equal(placementFileGpus(resolve(map), "/"), 2);
    // Only JSON can state it: another format is not even read.
    assert.equal(placementFileGpus("missing.pt", dir, "pt"), undefined);
    assertRefused(
      () => placementFileGpus("missing.json", dir),
      UsageError,
      "cannot read missing.json: no such file",
    );
    assertRefused(
      () => readPlacementFile("missing.json", ctx),
      UsageError,
      "cannot read missing.json: no such file",
    );
  });
});
