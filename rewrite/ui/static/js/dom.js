// DOM shorthand shared by the page's modules: an element by its id.

export const $ = (id) => document.getElementById(id);
