import { agencyByCode, type Catalogue, type LocalisedText } from '#workflow';
import type { MessageTemplate } from '../engine/engine.types.js';

/** Names the texts refer to, in both languages. */
export interface MessageNames {
  catalogue: Catalogue;
  lifeEventTitle(key: string): LocalisedText;
}

export interface RenderedMessage {
  subject: LocalisedText;
  body: LocalisedText;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

const date = (value: unknown, language: 'sv' | 'en'): string => {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) return '';
  return new Intl.DateTimeFormat(language === 'sv' ? 'sv-SE' : 'en-GB', {
    dateStyle: 'long',
    timeZone: 'Europe/Stockholm',
  }).format(new Date(value));
};

/**
 * Renders a stored message (template and parameters) in Swedish and English, naming agencies,
 * their actions and life events from the catalogue. Messages are stored as templates so that
 * no text with personal data is kept twice and wording can improve without a migration.
 */
export function renderMessage(
  template: MessageTemplate,
  params: Record<string, unknown>,
  sender: string,
  names: MessageNames,
): RenderedMessage {
  const agency = agencyByCode(names.catalogue, text(params.agency) || sender)?.agency;
  const agencyName = agency?.name ?? { sv: sender, en: sender };
  const action = agency?.actions.find((a) => a.name === text(params.action))?.title ?? {
    sv: text(params.action),
    en: text(params.action),
  };
  const lifeEvent = names.lifeEventTitle(text(params.lifeEvent));
  const reference = text(params.reference);
  const ref = (language: 'sv' | 'en'): string =>
    reference
      ? language === 'sv'
        ? ` Ärendenummer: ${reference}.`
        : ` Reference: ${reference}.`
      : '';
  const both = (build: (language: 'sv' | 'en') => string): LocalisedText => ({
    sv: build('sv'),
    en: build('en'),
  });
  switch (template) {
    case 'case-submitted':
      return {
        subject: both((l) => (l === 'sv' ? `Kvitto: ${lifeEvent.sv}` : `Receipt: ${lifeEvent.en}`)),
        body: both((l) =>
          l === 'sv'
            ? 'Ditt ärende är inskickat. Myndigheterna får bara de uppgifter du godkände i förhandsvisningen.'
            : 'Your case has been submitted. The agencies receive only the facts you approved in the preview.',
        ),
      };
    case 'step-awaiting-decision':
      return {
        subject: both((l) => `${agencyName[l]}: ${action[l]}`),
        body: both((l) => {
          const when = date(params.expectedDecisionAt, l);
          return l === 'sv'
            ? `Ansökan har tagits emot och handläggs.${when ? ` Beslut väntas ${when}.` : ''}${ref(l)}`
            : `The application has been received and is being processed.${when ? ` A decision is expected by ${when}.` : ''}${ref(l)}`;
        }),
      };
    case 'step-granted':
      return {
        subject: both((l) => (l === 'sv' ? `Beslut: ${action.sv}` : `Decision: ${action.en}`)),
        body: both((l) =>
          l === 'sv'
            ? `${agencyName.sv} har beviljat din ansökan.${ref(l)}`
            : `${agencyName.en} has granted your application.${ref(l)}`,
        ),
      };
    case 'step-refused':
      return {
        subject: both((l) => (l === 'sv' ? `Beslut: ${action.sv}` : `Decision: ${action.en}`)),
        body: both((l) =>
          l === 'sv'
            ? `${agencyName.sv} har avslagit din ansökan: ${text(params.reason)}.${ref(l)}`
            : `${agencyName.en} has refused your application: ${text(params.reason)}.${ref(l)}`,
        ),
      };
    case 'task-waiting':
      return {
        subject: both((l) => (l === 'sv' ? `Att göra: ${action.sv}` : `To do: ${action.en}`)),
        body: both((l) => {
          const when = date(params.deadline, l);
          return l === 'sv'
            ? `Ditt ärende väntar på dig.${when ? ` Gör det senast ${when}.` : ''}`
            : `Your case is waiting for you.${when ? ` Please do it by ${when}.` : ''}`;
        }),
      };
    case 'step-overdue':
      return {
        subject: both((l) => (l === 'sv' ? `Försenat: ${action.sv}` : `Overdue: ${action.en}`)),
        body: both((l) =>
          params.waitingFor === 'citizen'
            ? l === 'sv'
              ? 'Tiden för att göra detta har gått ut. Ärendet väntar fortfarande på dig.'
              : 'The time to do this has passed. The case is still waiting for you.'
            : l === 'sv'
              ? `${agencyName.sv} har inte svarat inom utsatt tid. En handläggare har fått veta det; ärendet fortsätter när svaret kommer.`
              : `${agencyName.en} has not answered in time. An administrator has been told; the case goes on when the answer comes.`,
        ),
      };
    case 'case-action-required':
      return {
        subject: both((l) =>
          l === 'sv' ? `Fördröjt: ${lifeEvent.sv}` : `Delayed: ${lifeEvent.en}`,
        ),
        body: both((l) =>
          l === 'sv'
            ? 'Ett steg i ditt ärende kunde inte slutföras. En handläggare ser över det.'
            : 'A step of your case could not be completed. An administrator is looking into it.',
        ),
      };
    case 'case-completed':
      return {
        subject: both((l) => (l === 'sv' ? `Klart: ${lifeEvent.sv}` : `Done: ${lifeEvent.en}`)),
        body: both((l) =>
          l === 'sv' ? 'Alla steg i ditt ärende är klara.' : 'Every step of your case is done.',
        ),
      };
    case 'case-failed':
      return {
        subject: both((l) => (l === 'sv' ? `Avslutat: ${lifeEvent.sv}` : `Ended: ${lifeEvent.en}`)),
        body: both((l) =>
          l === 'sv'
            ? 'Ditt ärende kunde inte slutföras och har avslutats.'
            : 'Your case could not be completed and has ended.',
        ),
      };
    case 'case-cancelled':
      return {
        subject: both((l) =>
          l === 'sv' ? `Avbrutet: ${lifeEvent.sv}` : `Cancelled: ${lifeEvent.en}`,
        ),
        body: both((l) =>
          params.by === 'citizen'
            ? l === 'sv'
              ? 'Du har avbrutit ärendet. Myndigheter som arbetade med det har fått veta.'
              : 'You cancelled the case. Agencies working on it have been told.'
            : l === 'sv'
              ? 'En handläggare har avbrutit ärendet.'
              : 'An administrator cancelled the case.',
        ),
      };
    case 'fewer-answers': {
      const events = Array.isArray(params.lifeEvents) ? params.lifeEvents : [];
      const list = (l: 'sv' | 'en'): string =>
        events
          .map((e) => {
            const item = e as { lifeEvent?: unknown; now?: unknown; before?: unknown };
            return `${names.lifeEventTitle(text(item.lifeEvent))[l]} (${String(item.before)} → ${String(item.now)})`;
          })
          .join(', ');
      return {
        subject: both((l) =>
          l === 'sv' ? 'Färre frågor nästa gång' : 'Fewer questions next time',
        ),
        body: both((l) =>
          l === 'sv'
            ? `Det vi nu vet behöver du inte lämna igen. Dessa livshändelser kräver färre svar av dig: ${list(l)}.`
            : `What we know now you need not give again. These life events need fewer answers from you: ${list(l)}.`,
        ),
      };
    }
  }
}
