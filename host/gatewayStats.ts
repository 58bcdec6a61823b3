// The embedded gateway's own stats, named and tagged as Envoy's (an HTTP connection manager
// with envoy/envoy.yaml's stat_prefix, and its ORIGINAL_DST cluster), for the admin endpoint.
import { Stat, StatsStore } from './statsStore.js';

/** The HTTP connection manager's stat_prefix and the upstream cluster's name in envoy/envoy.yaml. */
export const HTTP_STAT_PREFIX = 'prefix_router';
export const UPSTREAM_CLUSTER = 'vllm_original_dst';

/** The gateway's stats, named and tagged as Envoy's HTTP connection manager and cluster stats. */
export class GatewayStats {
  readonly store = new StatsStore();
  private readonly hcm = [['envoy_http_conn_manager_prefix', HTTP_STAT_PREFIX]] as const;
  private readonly cluster = [['envoy_cluster_name', UPSTREAM_CLUSTER]] as const;
  readonly cxTotal = this.store.counter('http.downstream_cx_total', this.hcm);
  readonly cxActive = this.store.gauge('http.downstream_cx_active', this.hcm);
  readonly rqTotal = this.store.counter('http.downstream_rq_total', this.hcm);
  readonly rqActive = this.store.gauge('http.downstream_rq_active', this.hcm);
  readonly rqCompleted = this.store.counter('http.downstream_rq_completed', this.hcm);
  readonly upstreamRqTotal = this.store.counter('cluster.upstream_rq_total', this.cluster);
  readonly upstreamConnectFail = this.store.counter('cluster.upstream_cx_connect_fail', this.cluster);
  readonly upstreamRetry = this.store.counter('cluster.upstream_rq_retry', this.cluster);
  readonly upstreamTimeout = this.store.counter('cluster.upstream_rq_timeout', this.cluster);

  /** Per-status counters, looked up once per status code rather than formatted on every response. */
  private readonly downstreamByStatus = new Map<number, Stat>();
  private readonly upstreamByStatus = new Map<number, [Stat, Stat]>();

  /** A response sent downstream: downstream_rq_<N>xx. */
  downstreamResponse(status: number): void {
    let s = this.downstreamByStatus.get(status);
    if (s === undefined) {
      s = this.codeClass('http.downstream_rq_xx', status, this.hcm);
      this.downstreamByStatus.set(status, s);
    }
    s.inc();
  }

  /** A response from a replica: upstream_rq_<code> and upstream_rq_<N>xx. */
  upstreamResponse(status: number): void {
    let s = this.upstreamByStatus.get(status);
    if (s === undefined) {
      s = [this.store.counter('cluster.upstream_rq', [['envoy_response_code', String(status)], ...this.cluster]), this.codeClass('cluster.upstream_rq_xx', status, this.cluster)];
      this.upstreamByStatus.set(status, s);
    }
    s[0].inc();
    s[1].inc();
  }

  private codeClass(name: string, status: number, tags: ReadonlyArray<readonly [string, string]>): Stat {
    return this.store.counter(name, [['envoy_response_code_class', String(Math.floor(status / 100))], ...tags]);
  }
}
