"""Read TensorBoard event files back (tf.compat.v1.train.summary_iterator) for tests."""

from pathlib import Path


def read_events(folder: Path) -> dict:
    """``{tag: [(step, value)]}`` of the event files directly in ``folder`` (one TensorBoard run):
    scalars as floats, images as (width, height), hparams and text as their plugin's name."""
    import tensorflow as tf

    out: dict = {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                plugin = v.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    value = float(tf.make_ndarray(v.tensor))
                elif plugin == "images":
                    value = tuple(int(b) for b in tf.make_ndarray(v.tensor)[:2])
                else:
                    value = plugin
                out.setdefault(v.tag, []).append((event.step, value))
    return out


def session_hparams(folder: Path) -> dict:
    """The hparams a run's hparams session records (``_hparams_/session_start_info``)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import metadata

    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                if v.tag == metadata.SESSION_START_INFO_TAG:
                    info = metadata.parse_session_start_info_plugin_data(
                        v.metadata.plugin_data.content)
                    return {k: getattr(x, x.WhichOneof("kind")) for k, x in info.hparams.items()}
    return {}


def experiment_metrics(folder: Path) -> list[tuple[str, str]]:
    """(group, tag) of the metrics the hparams experiment in ``folder`` declares."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import metadata

    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                if v.tag == metadata.EXPERIMENT_TAG:
                    exp = metadata.parse_experiment_plugin_data(v.metadata.plugin_data.content)
                    return [(m.name.group, m.name.tag) for m in exp.metric_infos]
    return []


def experiment_hparams(folder: Path) -> dict:
    """``{name: (type, domain)}`` of the hyper-parameters the hparams experiment in ``folder``
    declares: type as the DataType name, domain as a list (discrete), (min, max) or None."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api_pb2, metadata

    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                if v.tag == metadata.EXPERIMENT_TAG:
                    exp = metadata.parse_experiment_plugin_data(v.metadata.plugin_data.content)
                    out = {}
                    for h in exp.hparam_infos:
                        kind = h.WhichOneof("domain")
                        domain = (None if kind is None else list(h.domain_discrete) if
                                  kind == "domain_discrete" else
                                  (h.domain_interval.min_value, h.domain_interval.max_value))
                        out[h.name] = (api_pb2.DataType.Name(h.type), domain)
                    return out
    return {}
