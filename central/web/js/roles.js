// Which pages each role gets. The API enforces every permission; this only hides what a role cannot use.

export const PAGES = {
  monitor: { nav: "nav_monitor", roles: ["admin", "monitor", "supervisor", "grid_chief"] },
  board: { nav: "nav_board", roles: ["admin", "monitor", "supervisor", "grid_chief"] },
  dashboard: { nav: "nav_dashboard", roles: ["admin", "monitor", "supervisor", "grid_chief"] },
  tasks: { nav: "nav_tasks", roles: ["grid_worker", "unit"] },
  silences: { nav: "nav_silences", roles: ["admin", "monitor", "supervisor", "grid_chief"] },
  ops: { nav: "nav_ops", roles: ["admin"] },
};

// Pages reached from others, not listed in the navigation.
const INNER = {
  incident: ["admin", "monitor", "supervisor", "grid_chief", "grid_worker", "unit"],
  task: ["admin", "grid_worker", "unit"],
  zones: ["admin"],
};

export function canOpen(role, page) {
  return (PAGES[page]?.roles ?? INNER[page] ?? []).includes(role);
}

export function navFor(role) {
  return Object.entries(PAGES).filter(([, p]) => p.roles.includes(role)).map(([name, p]) => ({ name, key: p.nav }));
}

export function homeFor(role) {
  return role === "grid_worker" || role === "unit" ? "tasks" : "monitor";
}
