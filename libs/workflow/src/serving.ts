import { sortDiagnostics } from './diagnostics.js';
import { queuedAgencies } from './instances.js';
import type { Catalogue, Diagnostic, LifeEventDefinition } from './types.js';

/** Who can serve an action, besides what the catalogue itself configures. */
export interface Serving {
  /** The actions of leo's built-in mocks, by agency code. */
  builtInMocks: ReadonlyMap<string, ReadonlySet<string>>;
  /** Agencies served by an external adapter that hold at least one standing credential. */
  agenciesWithCredential: ReadonlySet<string>;
}

/**
 * Whether every step's action is served by someone, for a definition that is about to be
 * published (or is being drafted): an agency served by leo's mock must have the action built in
 * or configured (`mock` on the action), and such a mock may only read facts the step sends; an
 * agency served by an external adapter without any credential yet is a warning. Steps whose
 * agency or action is unknown are left to `validate`, which reports them.
 */
export function servingDiagnostics(
  definition: LifeEventDefinition,
  catalogue: Catalogue,
  serving: Serving,
): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const steps: unknown = (definition as { steps?: unknown }).steps;
  if (!Array.isArray(steps)) return diagnostics;
  const warned = new Set<string>();
  steps.forEach((raw: unknown, index) => {
    if (typeof raw !== 'object' || raw === null) return;
    const step = raw as Partial<Record<'id' | 'agency' | 'action', unknown>> & { needs?: unknown };
    if (typeof step.agency !== 'string' || typeof step.action !== 'string') return;
    const agency = catalogue.agencies.get(step.agency);
    const action = agency?.actions.find((a) => a.name === step.action);
    if (!agency || !action) return;
    const pointer = `/steps/${index}`;
    const name = `${agency.code}/${action.name}`;
    const stepId = typeof step.id === 'string' ? step.id : String(index);
    // Anything but `mock` is an external adapter (an entry stored as `http` before the rename).
    // An agency of many parties is served instance by instance.
    const served = agency.instances ? queuedAgencies([agency]) : [agency];
    if (agency.instances && served.length === 0 && !warned.has(agency.code)) {
      warned.add(agency.code);
      diagnostics.push({
        severity: 'warning',
        code: 'no-instance-onboarded',
        path: `${pointer}/agency`,
        message: `step ${stepId}: no instance of ${agency.code} is onboarded, so every such step waits, shown as delayed (PUT /v1/admin/agencies/${agency.code} with instances.onboarded)`,
      });
    }
    const unconnected = served.filter(
      (a) => a.adapter !== 'mock' && !serving.agenciesWithCredential.has(a.code),
    );
    if (unconnected.length > 0 && !warned.has(`${agency.code}/credential`)) {
      warned.add(`${agency.code}/credential`);
      const codes = unconnected.map((a) => a.code);
      const shown =
        codes.length > 5
          ? `${codes.slice(0, 5).join(', ')} and ${String(codes.length - 5)} more`
          : codes.join(', ');
      diagnostics.push({
        severity: 'warning',
        code: 'no-adapter-credential',
        path: `${pointer}/agency`,
        message: `step ${stepId}: ${shown} ${codes.length === 1 ? 'is' : 'are'} served by an external adapter, and none has a credential yet (POST /v1/admin/agencies/${codes[0] ?? agency.code}/credentials)`,
      });
    }
    if (!served.some((a) => a.adapter === 'mock')) return;
    if (!action.mock) {
      if (!serving.builtInMocks.get(agency.code)?.has(action.name)) {
        diagnostics.push({
          severity: 'error',
          code: 'action-not-served',
          path: `${pointer}/action`,
          message: `step ${stepId}: nobody serves ${name}: leo's mock of ${agency.code} has no such action built in, and the action has no mock configured (PUT /v1/admin/agencies/${agency.code} with the action's mock), nor is the agency served by an external adapter`,
        });
      }
      return;
    }
    const needs = Array.isArray(step.needs) ? (step.needs as unknown[]) : [];
    const read = [
      ...(action.mock.requires ?? []),
      ...Object.values(action.mock.produce ?? {}).flatMap((rule) =>
        'from' in rule ? [rule.from] : [],
      ),
    ];
    for (const key of new Set(read)) {
      if (!needs.includes(key)) {
        diagnostics.push({
          severity: 'error',
          code: 'mock-reads-unsent-fact',
          path: `${pointer}/needs`,
          message: `step ${stepId}: the mock of ${name} reads ${key}, which the step does not need (add it to needs, or change the mock)`,
        });
      }
    }
  });
  return sortDiagnostics(diagnostics);
}
