/** An error the user can fix from the command line; printed as one line, without a stack. */
export class CliError extends Error {
  override name = 'CliError';
}

/** The one line `tessera: <message>` for an error: its message with line breaks folded. */
export function errorLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return `tessera: ${message.replace(/\s*\n\s*/g, ' ').trim()}`;
}
