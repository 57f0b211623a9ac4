import type { MetricRecord } from '../../protocol/records';
// CSV of metric records (RFC 4180), one row per record, one column per metric.

const LEADING = ['step', 'kind', 'wall_s'];

export function metricsCsv(runs: readonly { name: string; records: readonly MetricRecord[] }[]): string {
  const metrics = new Set<string>();
  for (const run of runs) for (const record of run.records) for (const key in record) if (!LEADING.includes(key)) metrics.add(key);
  const columns = [...LEADING, ...[...metrics].sort()];
  const lines = [['run', ...columns].map(cell).join(',')];
  for (const run of runs) {
    for (const record of run.records) lines.push([run.name, ...columns.map((c) => record[c])].map(cell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

function cell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  // A spreadsheet runs a cell that starts with = + - @ as a formula: quote it as text.
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
