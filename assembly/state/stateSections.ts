// The state's optional sections (plugin/STATE_FORMAT.md, "Sections"): one
// place where each tag is routed to the feature that owns its bytes. A
// section's decoder validates all of it and fills the table it is given, or
// sets `sectionError` and returns false: the whole state is then refused.
// A tag no case names belongs to a newer control plane and is skipped.
import { OBSERVABILITY_TAG, decodeObservability } from "./observabilitySection";
import { ReplicaTable } from "./replicaTable";
import {
  SECTION_FLEET_POSITION, SECTION_OTHER_CONTENT, SECTION_OTHER_WORK, SECTION_PLACEMENTS, decodeFleetPosition, decodeOtherContent, decodeOtherWork,
  decodePlacements, fleetSectionError,
} from "./fleetSections";
import { LORA_SECTION_TAG, decodeLoraSection, loraError } from "./loraSection";
import { CONTEXT_SECTION_TAG, decodeContextSection } from "./contextSection";

export let sectionError: string = "";

/** Decodes the section `tag` of [p, p+len) into `t`; false (with sectionError) when it is malformed. */
export function decodeSection(t: ReplicaTable, tag: u32, p: usize, len: i32): bool {
  sectionError = "";
  switch (tag) {
    case SECTION_PLACEMENTS:
      if (decodePlacements(t, p, len)) return true;
      sectionError = fleetSectionError;
      return false;
    case SECTION_OTHER_WORK:
      if (decodeOtherWork(t, p, len)) return true;
      sectionError = fleetSectionError;
      return false;
    case SECTION_FLEET_POSITION:
      if (decodeFleetPosition(t, p, len)) return true;
      sectionError = fleetSectionError;
      return false;
    case SECTION_OTHER_CONTENT:
      if (decodeOtherContent(t, p, len)) return true;
      sectionError = fleetSectionError;
      return false;
    case LORA_SECTION_TAG: {
      t.lora = decodeLoraSection(p, len, t.n);
      if (t.lora === null) sectionError = loraError;
      return t.lora !== null;
    }
    case CONTEXT_SECTION_TAG:
      sectionError = decodeContextSection(t, p, len);
      return sectionError.length == 0;
    case OBSERVABILITY_TAG:
      sectionError = decodeObservability(t, p, len);
      return sectionError.length == 0;
    default:
      return true;
  }
}
