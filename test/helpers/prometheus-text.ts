/** Reading a Prometheus text scrape in tests: samples by metric name and labels, in any label order. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of m[2]?.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g) ?? [])
      labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const matches = (x: Sample, name: string, labels: Record<string, string>) =>
  x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v);

/** The value of the one sample with exactly these labels, or undefined when there is none. */
export function sample(
  s: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return s.find(
    (x) => matches(x, name, labels) && Object.keys(x.labels).length === Object.keys(labels).length,
  )?.value;
}

/** The sum of every sample of `name` whose labels include `labels`. */
export function sumOf(s: Sample[], name: string, labels: Record<string, string> = {}): number {
  return s.filter((x) => matches(x, name, labels)).reduce((t, x) => t + x.value, 0);
}
