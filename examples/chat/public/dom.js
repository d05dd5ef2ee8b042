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

/**
 * The page's one line of notices. show() puts up a passing one for `shownMs`; persist()
 * sets (or with null, clears) a standing one, shown at once and again whenever no passing
 * one is, until cleared.
 */
export function noticeLine(node, shownMs) {
  let standing = null;
  let timer = null;
  const draw = (text) => {
    node.textContent = text ?? '';
    node.hidden = text === null;
  };
  return {
    show(text) {
      clearTimeout(timer);
      draw(text);
      timer = setTimeout(() => {
        timer = null;
        draw(standing);
      }, shownMs);
    },
    persist(text) {
      if (text === standing) return;
      standing = text;
      if (text === null && timer !== null) return;
      clearTimeout(timer);
      timer = null;
      draw(text);
    },
  };
}

export function byId(id) {
  const node = document.getElementById(id);
  // A missing element is a mistake in index.html: say which, rather than fail later on null.
  if (node === null) throw new Error(`index.html has no #${id}`);
  return node;
}
