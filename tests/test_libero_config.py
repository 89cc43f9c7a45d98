"""The LIBERO env's pure-Python pieces work without the libero extra (CI installs only .[dev])."""
import sys


def test_robosuite_import_without_a_private_macro_file_is_quiet(tmp_path, monkeypatch, capsys):
    """A stand-in robosuite that warns like 1.4.0 when robosuite.macros_private cannot be imported."""
    from video_para.envs.libero import quiet_robosuite_import
    pkg = tmp_path / "robosuite"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("try:\n    from robosuite.macros_private import *\nexcept ImportError:\n"
                                     "    print('No private macro file found!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("robosuite", "robosuite.macros_private"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    quiet_robosuite_import()
    import robosuite  # noqa: F401
    assert "No private macro" not in capsys.readouterr().out
    (pkg / "macros_private.py").write_text("X = 1\n")                  # a real one is used, not shadowed
    for name in ("robosuite", "robosuite.macros_private"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    quiet_robosuite_import()
    import robosuite.macros_private  # noqa: F811
    assert robosuite.macros_private.X == 1
