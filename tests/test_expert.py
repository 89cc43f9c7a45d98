import numpy as np

from video_para.data.generate import main as generate


def test_generate_cli_builds_demos_for_a_protocol_split(capsys):
    eps = generate(["protocol=left_right", "split=test", "limit=3", "protocol.rows=4", "protocol.cols=4",
                    "env.image_height=48", "env.image_width=64"])
    assert len(eps) == 3 and "3 demos" in capsys.readouterr().out
    assert all(e.cameras["front"].images.shape[1:] == (48, 64, 3) for e in eps)
    # test split = right half: the bowl starts at negative y (image right) and ends on the plate
    assert all(e.meta["spec"]["bowl_xy"][1] < 0 and e.meta["spec"]["cell"][1] >= 2 for e in eps)
    assert all(30 <= len(e) <= 60 for e in eps)
    assert np.array_equal([e.action[-1, 3] for e in eps], [0.0, 0.0, 0.0])     # released at the end
