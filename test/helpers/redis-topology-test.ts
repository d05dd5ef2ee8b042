/**
 * The Redis topologies for node:test: each is stopped (and its files deleted) in t.after,
 * and without redis-server or redis-cli the test is skipped, except under CI=true, where it
 * fails: CI installs Redis, so a missing one is a broken CI, not a reason to skip.
 */
import type { TestContext } from 'node:test';
import { missingRedis, startSingleRedis, type SingleRedis, type SingleRedisOptions } from './redis-topology.js';
import { startCluster, type ClusterOptions, type ClusterTopology } from './redis-topology-cluster.js';
import { startSentinel, type SentinelOptions, type SentinelTopology } from './redis-topology-sentinel.js';

/** False (and the test skipped) when Redis is missing; throws under CI=true. */
export function redisAvailable(t: TestContext): boolean {
  const missing = missingRedis();
  if (missing === null) return true;
  if (process.env.CI === 'true') throw new Error(`${missing}, and CI=true: Redis tests must run in CI (.ci/run installs it)`);
  t.skip(missing);
  return false;
}

/** A single Redis, or null when the test was skipped. */
export async function singleRedisFor(t: TestContext, options: SingleRedisOptions = {}): Promise<SingleRedis | null> {
  if (!redisAvailable(t)) return null;
  const redis = await startSingleRedis(options);
  t.after(() => redis.stopAll());
  return redis;
}

/** A master, its replicas and three sentinels, or null when the test was skipped. */
export async function sentinelFor(t: TestContext, options: SentinelOptions = {}): Promise<SentinelTopology | null> {
  if (!redisAvailable(t)) return null;
  const sentinel = await startSentinel(options);
  t.after(() => sentinel.stopAll());
  return sentinel;
}

/** Three masters and three replicas in a cluster, or null when the test was skipped. */
export async function clusterFor(t: TestContext, options: ClusterOptions = {}): Promise<ClusterTopology | null> {
  if (!redisAvailable(t)) return null;
  const cluster = await startCluster(options);
  t.after(() => cluster.stopAll());
  return cluster;
}
