// The state's sections as the filter reads them (plugin/STATE_FORMAT.md,
// "Sections"): each tag the filter knows goes to the module that owns its
// bytes, as assembly/state/stateSections.ts routes it there. A section one of
// them finds malformed makes the filter refuse the whole state; a tag no
// owner claims is skipped.
import { decodeState, type RouterState } from './stateWire.js';
import {
  fleetSectionsOf, type FleetPosition, type OtherContentSection, type OtherWorkSection, type PlacementsSection,
} from './fleetWire.js';
import { decodeContextSection, CONTEXT_SECTION_TAG } from './contextSection.js';
import { decodeLoraSection, LORA_SECTION_TAG } from './loraSection.js';
import { decodeObservability, OBSERVABILITY_TAG, type ObservabilitySettings } from './observabilitySection.js';

export interface KnownSections {
  placements: PlacementsSection | null;
  otherWork: OtherWorkSection | null;
  position: FleetPosition | null;
  otherContent: OtherContentSection | null;
  lora: ReturnType<typeof decodeLoraSection> | null;
  maxModelLen: number[] | null;
  observability: ObservabilitySettings | null;
}

/** Decodes every section of `state` the filter knows; throws where the filter would refuse the state. */
export function knownSectionsOf(state: RouterState): KnownSections {
  const find = (tag: number) => state.sections?.find((s) => s.tag === tag)?.bytes;
  const lora = find(LORA_SECTION_TAG);
  const context = find(CONTEXT_SECTION_TAG);
  const observability = find(OBSERVABILITY_TAG);
  return {
    ...fleetSectionsOf(state),
    lora: lora ? decodeLoraSection(lora, state.replicas.length) : null,
    maxModelLen: context ? decodeContextSection(context, state.replicas.length) : null,
    observability: observability ? decodeObservability(observability) : null,
  };
}

/** A payload decoded by every rule the filter applies to it (header, records, and each section it knows); throws naming the first broken one. */
export function decodeStateAsFilter(bytes: Uint8Array): RouterState {
  const state = decodeState(bytes);
  knownSectionsOf(state);
  return state;
}
