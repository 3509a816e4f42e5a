"""Forward passes with hooks: eval mode on the way in, every submodule's own mode back on the way out."""

from __future__ import annotations

from torch import nn


def test_eval_mode_restores_mixed_modes_and_leaves_an_eval_model_untouched(monkeypatch):
    from lightning_topo.monitoring.hooks import eval_mode

    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.BatchNorm1d(2))
    model[1].eval()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
        calls = []
        monkeypatch.setattr(nn.Module, "train", lambda self, mode=True: calls.append(mode) or self)
        with eval_mode(model):  # nested, as the monitor's passes are: nothing to switch
            pass
        assert calls == []
        monkeypatch.undo()
    assert [m.training for m in model.modules()] == [True, True, False, True]
