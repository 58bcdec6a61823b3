/** One problem found by `npm run validate`: the file, where in it, and what is wrong. */
export interface Finding {
  file: string;
  /** Dotted path inside the file (`[n]` for list items); for multi-document YAML it starts with the document `#n`. */
  path: string;
  message: string;
}

export function formatFinding(f: Finding): string {
  return `${f.file}: ${f.path}: ${f.message}`;
}
