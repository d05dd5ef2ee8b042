/** The few DOM helpers the page needs. */

/** A new element whose text is set as text, never as HTML: names and messages come from other people. */
export function element(tag, { className, text, testid, title } = {}) {
  const node = document.createElement(tag);
  if (className !== undefined) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (testid !== undefined) node.dataset.testid = testid;
  if (title !== undefined) node.title = title;
  return node;
}

/** Unix seconds as the local time of day. */
export function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function byId(id) {
  const node = document.getElementById(id);
  // A missing element is a mistake in index.html: say which, rather than fail later on null.
  if (node === null) throw new Error(`index.html has no #${id}`);
  return node;
}
