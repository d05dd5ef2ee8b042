// How the benchmark's tables (lib/server-tables.mjs, history.mjs, pusher.mjs, features.mjs)
// print a figure: thousands grouped, `digits` decimals, and '—' for one that could not be measured.
export const format = (value, digits = 0) => (Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—');
