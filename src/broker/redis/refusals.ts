/**
 * Replies and client errors that say Redis did not run a command because it is not in
 * reach as a writable master: safe to hold and send again, unlike a timeout or a
 * connection that closed after the command went out (it may have run).
 */
const REFUSALS = [
  /^CLUSTERDOWN\b/, // the cluster lost a shard and is failing over
  /^TRYAGAIN\b/, // keys of the slot are being moved
  /^READONLY\b/, // the master was demoted (a Sentinel or Cluster failover)
  /^MASTERDOWN\b/, // a replica lost its master
  /^LOADING\b/, // Redis is loading its data set after a restart
  /enableOfflineQueue options is false/, // no connection: never written ("Stream isn't writeable …", "Cluster isn't ready …")
  /^None of startup nodes is available/,
];

export function isRefusal(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return REFUSALS.some((pattern) => pattern.test(message));
}
