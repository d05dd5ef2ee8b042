// The median of the finite values among `values` (NaN when there are none): how the history,
// Pusher and features scenarios (history.mjs, pusher.mjs, features.mjs) sum up their repeated runs.
export const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
