"""The PromQL name extractor the dashboard and alert checks rely on."""

from __future__ import annotations

from promql_names import label_names, metric_names, with_grafana_variables


def test_metric_names_skip_functions_labels_ranges_and_keywords() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (model, le) (rate(nnserve_request_duration_seconds_bucket"
        '{model=~"$model", endpoint!~".*(generate|completions).*"}[$__rate_interval]))) > 0.5 '
        'and on (model) nnserve_queue_depth offset 5m or vector(1e3) unless absent(up{job="x"})'
    )
    assert metric_names(expr) == {"nnserve_request_duration_seconds_bucket", "nnserve_queue_depth", "up"}


def test_metric_names_find_bare_series_and_aggregations_with_trailing_by() -> None:
    assert metric_names("sum(rate(a_total[5m])) by (code) / ignoring(code) group_left b:recorded") == {
        "a_total",
        "b:recorded",
    }


def test_label_names_come_from_matchers_and_grouping() -> None:
    expr = 'sum by (model, le) (rate(x_bucket{code=~"5..", code!="503", version="1"}[1m])) / on(endpoint) y'
    assert label_names(expr) == {"model", "le", "code", "version", "endpoint"}


def test_grafana_variables_become_evaluable_values() -> None:
    assert with_grafana_variables('rate(x{model=~"$model"}[$__rate_interval])') == 'rate(x{model=~".*"}[1m])'
