import type { Metric, MetricValueWithName, Registry } from 'prom-client';

type Labels = { method: string; route: string; status_code: string };

interface Series {
  labels: Labels;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * `raibid_http_request_duration_seconds`, observed once per request. prom-client's Histogram
 * validates and hashes its label object on every observation; here a series is found by one
 * string key and observing is a bucket increment. It is exposed in the registry as a histogram
 * like any other (prom-client reads metrics through `get()`).
 */
export class HttpDurationHistogram {
  readonly name = 'raibid_http_request_duration_seconds';
  readonly help = 'HTTP API request duration (log streams are not counted), by method, route and status code';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    registry: Registry,
    private readonly buckets: readonly number[],
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  observe(method: string, route: string, statusCode: number, seconds: number): void {
    const key = `${method} ${statusCode} ${route}`;
    let series = this.series.get(key);
    if (!series) {
      series = {
        labels: { method, route, status_code: String(statusCode) },
        counts: new Array<number>(this.buckets.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.series.set(key, series);
    }
    let bucket = 0;
    while (bucket < this.buckets.length && seconds > this.buckets[bucket]!) bucket++;
    series.counts[bucket]! += 1;
    series.sum += seconds;
    series.count += 1;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: MetricValueWithName<string>[];
  }> {
    const values: MetricValueWithName<string>[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      counts.forEach((observed, i) => {
        cumulative += observed;
        const le = i < this.buckets.length ? this.buckets[i]! : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_sum`, labels, value: sum });
      values.push({ metricName: `${this.name}_count`, labels, value: count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}
