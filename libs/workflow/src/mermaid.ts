import { describeRule } from './conditions.js';
import { dependencies } from './graph.js';
import type { Catalogue, LifeEventDefinition } from './types.js';

// Mermaid decodes `#name;` and `#number;` in labels as HTML entities. Quotes would end the label,
// angle brackets and ampersands would be read as HTML, a pipe would end an edge label.
const ENTITIES: Readonly<Record<string, string>> = {
  '#': '#35;',
  '"': '#quot;',
  '<': '#lt;',
  '>': '#gt;',
  '&': '#amp;',
  '|': '#124;',
  '`': '#96;',
};

/** Text made safe inside a quoted Mermaid label. */
export function mermaidText(text: string): string {
  return text.replace(/[#"<>&|`]/g, (c) => ENTITIES[c] ?? c).replace(/\s+/g, ' ');
}

function nodeId(prefix: string, id: string): string {
  return `${prefix}_${id.replace(/[^a-zA-Z0-9]/g, '_')}`;
}

/**
 * The definition as a Mermaid flowchart: a lane (subgraph) per agency in order of first use, a
 * node per step (its title, else its action's), a start node listing the inputs, an arrow per dependency. Arrows into a
 * conditional step are dashed and carry its condition. Deterministic, for a definition that
 * validated without errors.
 */
export function toMermaid(definition: LifeEventDefinition, catalogue: Catalogue): string {
  const lines = ['flowchart TD'];
  const inputs = definition.inputs.map(mermaidText);
  lines.push(`  start(["${['Inputs', ...inputs].join('<br/>')}"])`);
  const lanes = new Map<string, string[]>();
  for (const step of definition.steps) {
    const agency = catalogue.agencies.get(step.agency);
    const action = agency?.actions.find((a) => a.name === step.action);
    const title = step.title?.en ?? action?.title.en ?? step.action;
    const label = `${mermaidText(title)}<br/>${mermaidText(agency?.name.en ?? step.agency)}`;
    const lane = lanes.get(step.agency) ?? [];
    lane.push(`    ${nodeId('step', step.id)}["${label}"]`);
    lanes.set(step.agency, lane);
  }
  for (const [code, nodes] of lanes) {
    const name = catalogue.agencies.get(code)?.name.en ?? code;
    lines.push(`  subgraph ${nodeId('agency', code)}["${mermaidText(name)}"]`, ...nodes, '  end');
  }
  const deps = dependencies(definition);
  for (const step of definition.steps) {
    const target = nodeId('step', step.id);
    const sources = deps.get(step.id) ?? [];
    const from = sources.length === 0 ? ['start'] : sources.map((s) => nodeId('step', s));
    const arrow =
      step.when === undefined ? '-->' : `-.->|"${mermaidText(describeRule(step.when))}"|`;
    for (const source of from) lines.push(`  ${source} ${arrow} ${target}`);
  }
  return `${lines.join('\n')}\n`;
}
