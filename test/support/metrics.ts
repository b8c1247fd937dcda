import type { INestApplication } from '@nestjs/common';
import request from 'supertest';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One scrape of `/metrics`, parsed (Prometheus text format 0.0.4). */
export interface Exposition {
  contentType: string;
  /** Metric family name → its `# TYPE`. */
  types: Map<string, string>;
  samples: Sample[];
  /** The sum of the samples named `name` whose labels include `labels`. */
  value(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string, contentType = ''): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice('# TYPE '.length).split(' ');
      if (name && type) types.set(name, type);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(LABEL)) {
      if (key !== undefined && raw !== undefined) {
        labels[key] = raw.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      }
    }
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return {
    contentType,
    types,
    samples,
    value(name, wanted = {}) {
      return samples
        .filter(
          (s) => s.name === name && Object.entries(wanted).every(([k, v]) => s.labels[k] === v),
        )
        .reduce((sum, s) => sum + s.value, 0);
    },
  };
}

export async function scrape(app: INestApplication): Promise<Exposition> {
  const response = await request(app.getHttpServer() as Parameters<typeof request>[0])
    .get('/metrics')
    .expect(200);
  return parseExposition(response.text, String(response.headers['content-type']));
}

/**
 * Scrapes until `done` holds (the metrics of a change are counted just after it commits, and
 * scrape-time gauges are cached for up to 2 s), then returns that scrape; fails with the last
 * one's description otherwise.
 */
export async function scrapeUntil(
  app: INestApplication,
  done: (metrics: Exposition) => boolean,
  describe: (metrics: Exposition) => string,
  timeoutMs = 15_000,
): Promise<Exposition> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const metrics = await scrape(app);
    if (done(metrics)) return metrics;
    if (Date.now() > deadline) throw new Error(describe(metrics));
    await new Promise((r) => setTimeout(r, 100));
  }
}
