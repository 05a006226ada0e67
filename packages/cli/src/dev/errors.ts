/** The local stack cannot start or keep running: one line saying why and what to do. */
export class StackError extends Error {
  override name = 'StackError';
}
