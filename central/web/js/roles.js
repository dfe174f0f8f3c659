// Which pages each role gets. The API enforces every permission; this only hides what a role cannot use.

// The desk watches the whole queue, reviews and labels pictures and may ask for originals; the same
// four as DESK_ROLES in central/api/deps.py. The field works the tasks dispatched to it.
export const DESK_ROLES = Object.freeze(["admin", "monitor", "supervisor", "grid_chief"]);
export const FIELD_ROLES = Object.freeze(["grid_worker", "unit"]);
export const ROLES = Object.freeze([...DESK_ROLES, ...FIELD_ROLES]);

export const PAGES = {
  monitor: { nav: "nav_monitor", roles: DESK_ROLES },
  board: { nav: "nav_board", roles: DESK_ROLES },
  dashboard: { nav: "nav_dashboard", roles: DESK_ROLES },
  tasks: { nav: "nav_tasks", roles: FIELD_ROLES },
  silences: { nav: "nav_silences", roles: DESK_ROLES },
  cameras: { nav: "nav_cameras", roles: DESK_ROLES },
  ops: { nav: "nav_ops", roles: ["admin"] },
};

// Pages reached from others, not listed in the navigation.
const INNER = {
  incident: ROLES,
  task: ["admin", ...FIELD_ROLES],
  zones: ["admin"],
};

export function canOpen(role, page) {
  return (PAGES[page]?.roles ?? INNER[page] ?? []).includes(role);
}

export function navFor(role) {
  return Object.entries(PAGES).filter(([, p]) => p.roles.includes(role)).map(([name, p]) => ({ name, key: p.nav }));
}

export function homeFor(role) {
  return FIELD_ROLES.includes(role) ? "tasks" : "monitor";
}
