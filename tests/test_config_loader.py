"""Tests for archsim.config: YAML with line numbers, extends, overrides, validation messages, hashing."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from archsim.config import (
    ConfigError,
    InputError,
    LoadedConfig,
    SourceMap,
    config_hash,
    deep_merge,
    dump_resolved,
    list_presets,
    load_config,
    load_yaml,
    validate,
)


def write(path: Path, text: str) -> Path:
    """Write dedented YAML text to ``path`` (creating directories) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    """A throwaway preset directory with a DRAM preset (in a subdirectory) and a base system preset."""
    root = tmp_path / "presets"
    write(
        root / "dram" / "ddr4_test.yaml",
        """
        description: DDR4 test device
        standard: DDR4
        org:
          ranks: 1
          banks: 16
        timing:
          nRCD: 22
          nCL: 22
          nRP: 22
        """,
    )
    write(
        root / "base_system.yaml",
        """
        description: a base system
        cpu:
          cores: 4
        dram:
          extends: ddr4_test
          channels: 2
        """,
    )
    return root


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


def test_config_error_renders_present_parts_on_one_line() -> None:
    assert str(ConfigError("bad", file="a.yaml", line=3, path="x.y")) == "a.yaml:3: x.y: bad"
    assert str(ConfigError("bad", file="a.yaml")) == "a.yaml: bad"
    assert str(ConfigError("bad", path="x")) == "x: bad"
    assert str(ConfigError("first\nsecond\n")) == "first; second"
    assert issubclass(ConfigError, InputError)


def test_config_error_survives_pickling_with_location() -> None:
    err = pickle.loads(pickle.dumps(ConfigError("bad", file="a.yaml", line=3, path="x")))
    assert (err.file, err.line, err.path, err.message) == ("a.yaml", 3, "x", "bad")


# ---------------------------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------------------------


def test_load_yaml_records_lines_of_nested_keys_and_list_items(tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.yaml",
        """
        # comment
        dram:
          timing:
            nRCD: 22
          channels:
            - id: 0
              ranks: 2
            - id: 1
        flow: [1, 2]
        """,
    )
    data, src = load_yaml(f)
    assert data["dram"]["channels"][1] == {"id": 1}
    assert src[("dram",)] == (str(f), 2)
    assert src[("dram", "timing", "nRCD")] == (str(f), 4)
    assert src[("dram", "channels", 0)] == (str(f), 6)
    assert src[("dram", "channels", 0, "ranks")] == (str(f), 7)
    assert src[("dram", "channels", 1)] == (str(f), 8)
    assert src[("flow", 1)] == (str(f), 9)
    assert src[()] == (str(f), 2)  # the line where the document's content starts


def test_source_map_where_falls_back_to_deepest_known_prefix() -> None:
    src = SourceMap({(): ("f", None), ("a",): ("f", 1), ("a", "b"): ("f", 2)})
    assert src.where(("a", "b")) == ("f", 2)
    assert src.where(("a", "b", "missing", 0)) == ("f", 2)
    assert src.where(("zzz",)) == ("f", None)
    assert SourceMap().where(("a",)) == (None, None)


def test_source_map_merged_prefers_child_entries() -> None:
    parent = SourceMap({("a",): ("p", 1), ("b",): ("p", 2)})
    child = SourceMap({("a",): ("c", 7)})
    merged = parent.merged(child)
    assert merged[("a",)] == ("c", 7)
    assert merged[("b",)] == ("p", 2)
    assert parent[("a",)] == ("p", 1)  # unchanged


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_yaml(missing)
    assert str(info.value) == f"{missing}: file not found"
    with pytest.raises(ConfigError) as info:
        load_config(str(missing))
    assert str(info.value) == f"{missing}: file not found"


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.yaml", "a: 1\nb:\n  c: [1, 2\nd: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(f)
    err = info.value
    assert err.file == str(f)
    assert err.line == 4
    assert str(err).startswith(f"{f}:4: invalid YAML: ")
    assert "\n" not in str(err)


def test_duplicate_key_reported_at_the_duplicate(tmp_path: Path) -> None:
    f = write(
        tmp_path / "dup.yaml",
        """
        dram:
          nRCD: 1
          nCL: 2
          nRCD: 3
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_yaml(f)
    assert str(info.value) == f"{f}:4: dram.nRCD: duplicate key (first defined on line 2)"


def test_yaml_merge_keys_and_exponent_floats(tmp_path: Path) -> None:
    f = write(
        tmp_path / "m.yaml",
        """
        base: &base {x: 1, y: 2}
        derived:
          <<: *base
          y: 3
        freq: 3.2e9
        size: 1e3
        """,
    )
    data, src = load_yaml(f)
    assert data["derived"] == {"x": 1, "y": 3}
    assert src[("derived", "y")] == (str(f), 4)
    assert data["freq"] == 3.2e9 and isinstance(data["freq"], float)
    assert data["size"] == 1000.0


# ---------------------------------------------------------------------------------------------------------------
# extends and merging
# ---------------------------------------------------------------------------------------------------------------


def test_deep_merge_merges_dicts_and_replaces_lists_and_scalars() -> None:
    base = {"a": {"x": 1, "y": [1, 2, 3], "z": {"k": 1}}, "b": 1, "keep": True}
    over = {"a": {"y": [9], "z": None, "new": 5}, "b": {"now": "dict"}}
    merged = deep_merge(base, over)
    assert merged == {"a": {"x": 1, "y": [9], "z": None, "new": 5}, "b": {"now": "dict"}, "keep": True}
    assert base["a"]["y"] == [1, 2, 3]  # inputs untouched
    assert list(merged["a"]) == ["x", "y", "z", "new"]


def test_extends_relative_path_merges_and_tracks_sources(tmp_path: Path) -> None:
    parent = write(
        tmp_path / "common" / "parent.yaml",
        """
        a:
          x: 1
          y: [1, 2, 3]
        b: parent
        """,
    )
    child = write(
        tmp_path / "configs" / "child.yaml",
        """
        extends: ../common/parent.yaml
        a:
          y: [7]
        c: 3
        """,
    )
    cfg = load_config(child, preset_dirs=tmp_path / "no_presets")
    assert cfg.data == {"a": {"x": 1, "y": [7]}, "b": "parent", "c": 3}
    assert "extends" not in cfg.data
    assert cfg.name == "child"
    assert cfg.path == child
    assert cfg.sources.where(("a", "x")) == (str(parent), 2)
    assert cfg.sources.where(("a", "y")) == (str(child), 3)
    assert cfg.sources.where(("a", "y", 0)) == (str(child), 3)
    assert ("a", "y", 2) not in cfg.sources  # the parent's replaced list items are gone
    assert cfg.sources.where(("b",)) == (str(parent), 4)


def test_extends_preset_name_by_stem_and_by_subdir(tmp_path: Path, presets: Path) -> None:
    for name in ("ddr4_test", "dram/ddr4_test"):
        f = write(tmp_path / "c.yaml", f"extends: {name}\norg:\n  ranks: 2\n")
        cfg = load_config(f, preset_dirs=presets)
        assert cfg.data["org"] == {"ranks": 2, "banks": 16}
        assert cfg.data["timing"]["nRCD"] == 22
        assert "description" not in cfg.data  # a parent's description is not inherited
        file, line = cfg.sources.where(("timing", "nRCD"))
        assert (Path(file).resolve(), line) == ((presets / "dram" / "ddr4_test.yaml").resolve(), 7)


def test_nested_extends_inside_a_mapping(tmp_path: Path, presets: Path) -> None:
    f = write(
        tmp_path / "sys.yaml",
        """
        description: my system
        dram:
          extends: ddr4_test
          channels: 1
          timing:
            nCL: 24
        """,
    )
    cfg = load_config(f, preset_dirs=presets)
    assert cfg.data == {
        "description": "my system",
        "dram": {
            "standard": "DDR4",
            "org": {"ranks": 1, "banks": 16},
            "timing": {"nRCD": 22, "nCL": 24, "nRP": 22},
            "channels": 1,
        },
    }
    assert cfg.sources.where(("dram", "timing", "nCL")) == (str(f), 6)
    assert cfg.sources.where(("dram", "channels")) == (str(f), 4)
    assert cfg.sources.where(("dram",)) == (str(f), 2)
    preset_file, line = cfg.sources.where(("dram", "org", "banks"))
    assert Path(preset_file).name == "ddr4_test.yaml" and line == 5


def test_multi_level_chain_with_nested_and_top_level_extends(tmp_path: Path, presets: Path) -> None:
    mid = write(
        tmp_path / "mid.yaml",
        """
        extends: base_system
        cpu:
          cores: 8
        dram:
          channels: 4
        """,
    )
    top = write(
        tmp_path / "top.yaml",
        """
        extends: mid.yaml
        dram:
          timing:
            nRP: 30
        """,
    )
    cfg = load_config(top, preset_dirs=presets)
    assert cfg.data["cpu"] == {"cores": 8}
    assert cfg.data["dram"]["channels"] == 4
    assert cfg.data["dram"]["timing"] == {"nRCD": 22, "nCL": 22, "nRP": 30}
    assert cfg.data["dram"]["standard"] == "DDR4"
    assert "description" not in cfg.data
    assert cfg.sources.where(("cpu", "cores")) == (str(mid), 3)
    assert cfg.sources.where(("dram", "timing", "nRP")) == (str(top), 4)
    assert Path(cfg.sources.where(("dram", "timing", "nRCD"))[0]).name == "ddr4_test.yaml"


def test_extends_list_merges_parents_in_order(tmp_path: Path) -> None:
    write(tmp_path / "p1.yaml", "a: 1\nb: 1\nd: {x: 1}\n")
    write(tmp_path / "p2.yaml", "b: 2\nc: 2\nd: {y: 2}\n")
    f = write(tmp_path / "c.yaml", "extends: [p1.yaml, p2.yaml]\nc: 3\n")
    cfg = load_config(f, preset_dirs=tmp_path / "none")
    assert cfg.data == {"a": 1, "b": 2, "d": {"x": 1, "y": 2}, "c": 3}
    assert cfg.sources.where(("b",)) == (str(tmp_path / "p2.yaml"), 1)


def test_extends_cycle_is_detected(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "extends: b.yaml\nx: 1\n")
    b = write(tmp_path / "b.yaml", "y: 2\nextends: a.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_config(a, preset_dirs=tmp_path / "none")
    assert str(info.value) == f"{b}:2: extends: extends cycle: {a} -> {b} -> {a}"


def test_unknown_preset_is_reported_at_the_extends_line(tmp_path: Path, presets: Path) -> None:
    f = write(tmp_path / "c.yaml", "cpu: {cores: 1}\ndram:\n  extends: ddr5_nope\n")
    with pytest.raises(ConfigError) as info:
        load_config(f, preset_dirs=presets)
    assert str(info.value) == (
        f"{f}:3: dram.extends: unknown preset 'ddr5_nope' (known: base_system, ddr4_test)"
    )


def test_extends_missing_relative_file(tmp_path: Path) -> None:
    f = write(tmp_path / "c.yaml", "extends: ../gone.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_config(f, preset_dirs=tmp_path / "none")
    assert str(info.value) == f"{f}:1: extends: file not found: {tmp_path.parent / 'gone.yaml'}"


def test_load_config_by_preset_name(presets: Path) -> None:
    cfg = load_config("base_system", preset_dirs=presets)
    assert cfg.name == "base_system"
    assert cfg.data["description"] == "a base system"  # the loaded file's own description stays
    assert cfg.data["dram"]["channels"] == 2
    assert cfg.data["dram"]["org"]["banks"] == 16
    with pytest.raises(ConfigError, match=r"unknown preset 'nothing' \(known: base_system, ddr4_test\)"):
        load_config("nothing", preset_dirs=presets)


def test_names_file_then_shipped_hwconfig_then_preset(tmp_path: Path, monkeypatch) -> None:
    """The documented rule: an existing file, then hwconfigs/NAME.yaml, then a preset (stem or relative name)."""
    import archsim.config.loader as loader

    shipped = tmp_path / "hwconfigs"
    write(shipped / "default.yaml", "description: a shipped hwconfig named like the default preset\nx: 1\n")
    write(shipped / "mine.yaml", "x: 2\n")
    monkeypatch.setattr(loader, "HWCONFIGS_DIR", shipped)
    monkeypatch.chdir(tmp_path)
    assert load_config("mine").data == {"x": 2} and load_config("mine.yaml").name == "mine"
    assert load_config("default").data["x"] == 1  # the shipped hwconfig wins over the preset
    assert load_config("systems/default").path == loader.PRESET_DIR / "systems" / "default.yaml"
    assert "dram" in load_config("systems/default").data
    assert load_config("ddr4_3200_8gb_x8").path.parent.name == "dram"  # presets are still names
    write(tmp_path / "mine", "x: 3\n")  # a file in the working directory wins over every name
    assert load_config("mine").data == {"x": 3}
    assert [p["name"] for p in loader.list_shipped("hwconfig")] == ["default", "mine"]
    with pytest.raises(ConfigError) as info:
        load_config("mien")
    assert str(info.value) == ("config 'mien' not found: not a file, not a shipped hwconfig, not a preset "
                               "(archsim presets lists them; did you mean mine?)")
    # a path that names nothing is reported as a missing file, not looked up as a name
    with pytest.raises(ConfigError, match="file not found"):
        load_config("sub/mine.yaml")


def test_list_presets(presets: Path) -> None:
    listed = list_presets(presets)
    assert [(p["name"], p["path"], p["description"]) for p in listed] == [
        ("base_system", "base_system.yaml", "a base system"),
        ("ddr4_test", "dram/ddr4_test.yaml", "DDR4 test device"),
    ]


# ---------------------------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------------------------


def test_overrides_are_typed_and_create_missing_mappings(tmp_path: Path) -> None:
    f = write(tmp_path / "c.yaml", "a:\n  b: 1\n  lst: [{v: 1}, {v: 2}]\n")
    cfg = load_config(
        f,
        overrides=["a.b=8", "a.flag=true", "a.list=[1, 2]", "x.y.z=hello", "a.lst[1].v=5", "a.ratio=0.5"],
        preset_dirs=tmp_path / "none",
    )
    assert cfg.data["a"]["b"] == 8 and isinstance(cfg.data["a"]["b"], int)
    assert cfg.data["a"]["flag"] is True
    assert cfg.data["a"]["list"] == [1, 2]
    assert cfg.data["a"]["ratio"] == 0.5
    assert cfg.data["a"]["lst"] == [{"v": 1}, {"v": 5}]
    assert cfg.data["x"] == {"y": {"z": "hello"}}
    assert cfg.sources.where(("a", "b")) == ("--set a.b=8", None)
    assert cfg.sources.where(("x", "y")) == ("--set x.y.z=hello", None)
    assert cfg.sources.where(("a", "lst", 1, "v")) == ("--set a.lst[1].v=5", None)
    assert cfg.sources.where(("a", "lst", 0, "v")) == (str(f), 3)
    assert cfg.overrides == (
        "a.b=8",
        "a.flag=true",
        "a.list=[1, 2]",
        "x.y.z=hello",
        "a.lst[1].v=5",
        "a.ratio=0.5",
    )


def test_override_replacing_a_mapping_drops_its_old_sources(tmp_path: Path) -> None:
    f = write(tmp_path / "c.yaml", "a:\n  b:\n    c: 1\n")
    cfg = load_config(f, overrides=["a.b={d: 2}"], preset_dirs=tmp_path / "none")
    assert cfg.data == {"a": {"b": {"d": 2}}}
    assert ("a", "b", "c") not in cfg.sources
    assert cfg.sources.where(("a", "b", "d")) == ("--set a.b={d: 2}", None)


@pytest.mark.parametrize("bad", ["novalue", "=3", " =3"])
def test_malformed_override(tmp_path: Path, bad: str) -> None:
    f = write(tmp_path / "c.yaml", "a: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(f, overrides=[bad], preset_dirs=tmp_path / "none")
    assert info.value.file == "--set"
    assert str(info.value) == f"--set: malformed override '{bad}' (expected KEY.PATH=VALUE)"


def test_override_through_a_scalar_is_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "c.yaml", "a: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(f, overrides=["a.b=2"], preset_dirs=tmp_path / "none")
    assert str(info.value) == "--set a.b=2: a.b: cannot set 'a.b': a is 1, not a mapping"


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------


class Timing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nRCD: int
    nCL: int = 22

    @field_validator("nRCD")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be a positive integer")
        return value


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ranks: int = Field(gt=0)


class Dram(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timing: Timing
    channels: list[Channel] = []


class System(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    dram: Dram


def _system_error(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> tuple[Path, str]:
    f = write(tmp_path / "sys.yaml", text)
    cfg = load_config(f, overrides=overrides, preset_dirs=tmp_path / "none")
    with pytest.raises(ConfigError) as info:
        validate(cfg, System)
    return f, str(info.value)


def test_validate_returns_the_model(tmp_path: Path) -> None:
    f = write(tmp_path / "sys.yaml", "dram:\n  timing:\n    nRCD: 5\n  channels: [{ranks: 2}]\n")
    model = validate(load_config(f, preset_dirs=tmp_path / "none"), System)
    assert isinstance(model, System)
    assert model.dram.timing.nRCD == 5
    assert model.dram.channels[0].ranks == 2


def test_validation_value_error_message(tmp_path: Path) -> None:
    f, message = _system_error(
        tmp_path,
        """
        dram:
          timing:
            nCL: 20
            nRCD: -3
        """,
    )
    assert message == f"{f}:4: dram.timing.nRCD: must be a positive integer, got -3"


def test_validation_builtin_message_with_list_index(tmp_path: Path) -> None:
    f, message = _system_error(
        tmp_path,
        """
        dram:
          timing: {nRCD: 1}
          channels:
            - ranks: 2
            - ranks: 0
        """,
    )
    assert message == f"{f}:5: dram.channels[1].ranks: input should be greater than 0, got 0"


def test_validation_type_error_shows_the_input(tmp_path: Path) -> None:
    f, message = _system_error(tmp_path, "dram:\n  timing:\n    nRCD: fast\n")
    assert message == (
        f"{f}:3: dram.timing.nRCD: input should be a valid integer, unable to parse string as an integer, "
        "got 'fast'"
    )


def test_validation_unknown_key(tmp_path: Path) -> None:
    f, message = _system_error(
        tmp_path,
        """
        dram:
          timing:
            nRCD: 1
            nRDC: 2
        """,
    )
    assert message == f"{f}:4: dram.timing.nRDC: unknown key"


def test_validation_missing_key_points_at_parent_mapping(tmp_path: Path) -> None:
    f, message = _system_error(tmp_path, "description: x\ndram:\n  timing:\n    nCL: 1\n")
    assert message == f"{f}:3: dram.timing.nRCD: required key missing"


def test_validation_error_on_an_overridden_value(tmp_path: Path) -> None:
    _, message = _system_error(
        tmp_path, "dram:\n  timing:\n    nRCD: 5\n", overrides=("dram.timing.nRCD=-1",)
    )
    assert message == "--set dram.timing.nRCD=-1: dram.timing.nRCD: must be a positive integer, got -1"


def test_validation_error_in_a_value_from_a_preset(tmp_path: Path) -> None:
    presets = tmp_path / "presets"
    preset = write(presets / "bad_timing.yaml", "timing:\n  nRCD: 0\n")
    f = write(tmp_path / "sys.yaml", "dram:\n  extends: bad_timing\n")
    cfg = load_config(f, preset_dirs=presets)
    with pytest.raises(ConfigError) as info:
        validate(cfg, System)
    assert Path(info.value.file).resolve() == preset.resolve()
    assert (info.value.line, info.value.path) == (2, "dram.timing.nRCD")
    assert info.value.message == "must be a positive integer, got 0"


# ---------------------------------------------------------------------------------------------------------------
# Output and hashing
# ---------------------------------------------------------------------------------------------------------------


def test_config_hash_is_stable_across_key_order() -> None:
    one = {"a": 1, "b": {"x": [1, 2], "y": "s"}}
    two = {"b": {"y": "s", "x": [1, 2]}, "a": 1}
    assert config_hash(one) == config_hash(two)
    assert len(config_hash(one)) == 64
    assert config_hash(one) != config_hash({"a": 1, "b": {"x": [2, 1], "y": "s"}})
    assert config_hash({1: "a"}) != config_hash({"1": "a"})


def test_config_hash_of_loaded_config_ignores_file_layout(tmp_path: Path) -> None:
    f1 = write(tmp_path / "one.yaml", "a: 1\nb: {c: 2}\n")
    write(tmp_path / "base.yaml", "b:\n  c: 2\n")
    f2 = write(tmp_path / "two.yaml", "extends: base.yaml\na: 1\n")
    c1 = load_config(f1, preset_dirs=tmp_path / "none")
    c2 = load_config(f2, preset_dirs=tmp_path / "none")
    assert isinstance(c1, LoadedConfig)
    assert c1.hash == c2.hash == config_hash({"b": {"c": 2}, "a": 1})


def test_dump_resolved_round_trips_and_keeps_order(tmp_path: Path, presets: Path) -> None:
    f = write(tmp_path / "c.yaml", "zeta: 1\ndram:\n  extends: ddr4_test\nalpha: [1, 2]\n")
    cfg = load_config(f, preset_dirs=presets)
    text = dump_resolved(cfg.data)
    assert yaml.safe_load(text) == cfg.data
    assert [line.split(":")[0] for line in text.splitlines() if not line.startswith((" ", "-"))] == [
        "zeta",
        "dram",
        "alpha",
    ]
    assert "extends" not in text
