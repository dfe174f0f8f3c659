// Chinese by default, English on request; the choice is remembered in this browser.

const LANG_KEY = "sharpeyes.lang";

const TEXT = {
  app_title: ["雪亮工程 综治中心", "Sharp Eyes centre"],
  login: ["登录", "Log in"],
  logout: ["退出", "Log out"],
  username: ["用户名", "Username"],
  password: ["密码", "Password"],
  login_failed: ["用户名或密码错误", "Wrong username or password"],
  language: ["English", "中文"],
  language_label: ["切换语言", "Switch language"],
  skip_to_main: ["跳到主要内容", "Skip to main content"],
  nav_monitor: ["告警队列", "Alert queue"],
  nav_board: ["督办看板", "Supervision"],
  nav_dashboard: ["统计", "Dashboard"],
  nav_tasks: ["我的任务", "My tasks"],
  nav_ops: ["运维", "Operations"],
  nav_silences: ["静默", "Silences"],
  silences_title: ["告警静默", "Silenced alarms"],
  silences_help: ["静默期间，该摄像机（区域、隐患）的新告警直接归档为已关闭，并记录原因。", "While a silence lasts, new alarms of that camera (zone, hazard) are filed closed, with the reason recorded."],
  silence_until: ["截止", "Until"],
  silence_hours: ["时长（小时）", "Hours"],
  add_silence: ["添加静默", "Add silence"],
  end_silence: ["结束", "End now"],
  silence_added: ["已添加静默", "Silence added"],
  silence_ended: ["已结束静默", "Silence ended"],
  all_zones: ["全部区域", "all zones"],
  all_hazards: ["全部隐患", "all hazards"],
  nav_main: ["主导航", "Main navigation"],
  live_on: ["● 实时", "● live"],
  live_off: ["○ 重连中", "○ reconnecting"],
  loading: ["加载中…", "Loading…"],
  none: ["暂无", "None"],
  no_alerts: ["暂无待处理告警", "No alerts waiting"],
  queue_title: ["告警队列", "Alert queue"],
  queue_help: ["快捷键：J/K 上下，Enter 打开，C 确认，X 误报驳回，D 派遣，? 帮助", "Keys: J/K move, Enter open, C confirm, X dismiss, D dispatch, ? help"],
  shortcuts: ["键盘快捷键", "Keyboard shortcuts"],
  key_move: ["上一条 / 下一条", "previous / next"],
  key_open: ["打开事件", "open incident"],
  key_confirm: ["确认立案", "confirm"],
  key_dismiss: ["驳回（填写原因）", "dismiss with a reason"],
  key_dispatch: ["派遣", "dispatch"],
  close: ["关闭", "Close"],
  filter_all: ["全部", "All"],
  filter_open: ["待处理", "Open"],
  camera: ["摄像头", "Camera"],
  zone: ["区域", "Zone"],
  grid_cell: ["网格", "Grid cell"],
  hazard: ["隐患", "Hazard"],
  state: ["状态", "State"],
  condition: ["现场", "Condition"],
  lasted: ["持续", "Lasted"],
  deadline: ["时限", "Deadline"],
  started: ["开始", "Started"],
  assignee: ["处置人", "Assignee"],
  score: ["置信度", "Score"],
  snapshot: ["快照", "Snapshot"],
  source_open311: ["市民 / 热线上报", "Resident or hotline report"],
  address: ["地址", "Address"],
  description: ["描述", "Description"],
  clip: ["视频片段", "Clip"],
  clip_desk_only: ["视频片段仅限值班台查看原件（需填写理由）", "Clips are shown to the desk only, with a reason"],
  original_reason: ["查看原件的理由（将被记录）", "Reason for the original (recorded)"],
  show_original: ["查看原件", "Show original"],
  play_clip: ["播放视频（原件）", "Play clip (original)"],
  original: ["原件", "original"],
  who_looked: ["查阅记录", "Who looked"],
  actuations: ["联动记录（开门保持、语音提醒）", "Door holds and warnings"],
  actuators: ["联动设备", "Actuators"],
  since: ["起始", "Since"],
  holding_now: ["正在保持", "Holding now"],
  release_hold: ["解除保持", "Release hold"],
  release_reason: ["解除原因（将被记录）", "Why release it (recorded)"],
  release_sent: ["已向边缘节点发送解除指令", "Release sent to the edge"],
  latency: ["响应", "Latency"],
  rearms: ["续保", "re-armed"],
  act_hold: ["保持开门", "Hold"],
  act_rearm: ["续保", "Re-arm"],
  act_release: ["解除", "Release"],
  act_release_hold: ["请求解除保持", "Release requested"],
  actuator_idle: ["空闲", "idle"],
  actuator_held: ["保持中", "holding"],
  actuator_failing: ["无应答", "not answering"],
  hold_reason_hazard_ended: ["隐患已消失", "hazard ended"],
  hold_reason_max_hold: ["达到最长保持时间，已升级", "cap reached, escalated"],
  hold_reason_manual: ["人工解除", "released by hand"],
  hold_reason_camera_lost: ["摄像机失联", "camera lost"],
  hold_reason_error: ["设备错误", "device error"],
  hold_reason_shutdown: ["边缘节点停止", "edge stopped"],
  pipl_register: ["个人信息处理登记（PIPL）", "PIPL register"],
  pipl_purpose: ["目的", "Purpose"],
  pipl_basis: ["法律依据", "Legal basis"],
  pipl_signage: ["提示标识", "Sign posted"],
  pipl_retention: ["保存期限", "Retention"],
  pipl_gaps: ["待补事项", "Gaps"],
  pipl_csv: ["导出 CSV", "Export CSV"],
  variant: ["版本", "Version"],
  variant_redacted: ["已打码", "redacted"],
  variant_original: ["原件", "original"],
  variant_withheld: ["已拦截", "withheld"],
  demo_banner: ["演示模式：默认密码，切勿用于实际部署", "DEMO: default passwords, never for a deployment"],
  evidence: ["证据", "Evidence"],
  history: ["处置记录", "History"],
  feedback: ["反馈", "Feedback"],
  checks: ["核查", "Checks"],
  photos: ["照片", "Photos"],
  note: ["说明", "Note"],
  reason: ["原因", "Reason"],
  worker: ["网格员", "Worker"],
  unit: ["单位", "Unit"],
  auto_assign: ["按规则自动", "by rule"],
  supervised: ["督办", "Supervised"],
  escalation: ["升级", "Escalation"],
  rework: ["返工", "Rework"],
  episodes: ["次数", "Episodes"],
  actions: ["操作", "Actions"],
  no_actions: ["当前状态下您无可执行操作", "Nothing for you to do in this state"],
  submit: ["提交", "Submit"],
  cancel: ["取消", "Cancel"],
  back: ["返回", "Back"],
  pending_upload: ["待上传", "pending upload"],
  open_incident: ["打开", "Open"],
  incident: ["事件", "Incident"],
  by: ["操作人", "By"],
  at: ["时间", "At"],
  from_to: ["状态变化", "From → to"],
  done: ["已完成", "Done"],
  action_failed: ["操作失败", "Action failed"],
  act_confirm: ["确认立案", "Confirm"],
  act_dismiss: ["误报驳回", "Dismiss"],
  act_dispatch: ["派遣", "Dispatch"],
  act_accept: ["签收", "Accept"],
  act_return: ["退回", "Return"],
  act_feedback: ["反馈", "Report"],
  act_check: ["核查", "Check"],
  act_pass: ["核查通过", "Pass"],
  act_fail: ["核查不通过（返工）", "Fail (rework)"],
  act_close: ["强制结案", "Close"],
  act_merge: ["合并", "Merge"],
  act_supervise: ["督办", "Supervise"],
  check_mode: ["核查方式", "Check mode"],
  check_auto: ["摄像头自动复核", "Automatic (camera re-check)"],
  check_person: ["人工核查", "By a person"],
  check_still_there: ["隐患仍在，核查不通过", "Still there: check failed"],
  check_clear: ["隐患已消除，核查通过", "Clear: check passed"],
  check_waiting: ["等待摄像头回复…", "Waiting for the camera…"],
  merge_target: ["合并到事件编号", "Merge into incident id"],
  close_reason: ["结案原因", "Close reason"],
  board_title: ["督办看板", "Supervision board"],
  overdue: ["已超期", "Overdue"],
  due_soon: ["即将到期", "Due soon"],
  by_grid: ["按网格", "By grid node"],
  open_count: ["在办", "Open"],
  dashboard_title: ["统计分析", "Dashboard"],
  closure_rate: ["结案率", "Closure rate"],
  on_time_rate: ["按期结案率", "On-time rate"],
  rework_rate: ["返工率", "Rework rate"],
  overdue_now: ["当前超期", "Overdue now"],
  total: ["总数", "Total"],
  trend_by_day: ["近30天趋势", "Last 30 days"],
  by_hazard: ["按隐患类型", "By hazard"],
  by_grid_node: ["按网格", "By grid node"],
  grid_index: ["月度红黄蓝指数", "Monthly red/yellow/blue index"],
  health: ["设备状态", "Camera and edge health"],
  false_alarms: ["误报（按摄像头）", "False alarms by camera"],
  mean_stage: ["各环节平均用时", "Mean time per stage"],
  edge: ["边缘节点", "Edge"],
  last_seen: ["最近", "Last seen"],
  rate: ["比例", "Rate"],
  incidents: ["事件", "Incidents"],
  tasks_title: ["我的任务", "My tasks"],
  no_tasks: ["暂无任务", "No tasks"],
  due: ["到期", "Due"],
  report_title: ["现场反馈", "Report from the site"],
  take_photo: ["拍照 / 选择照片", "Take or choose photos"],
  report_sent: ["已提交反馈", "Report sent"],
  check_result: ["核查结果", "Check result"],
  check_passed: ["核查通过，已结案", "Check passed, closed"],
  came_back: ["核查未通过，需返工", "Check failed: rework needed"],
  ops_title: ["运维", "Operations"],
  sites: ["站点与设备", "Sites, edges and cameras"],
  grid_tree: ["网格", "Grid"],
  users: ["用户与角色", "Users and roles"],
  role: ["角色", "Role"],
  active: ["启用", "Active"],
  add_user: ["添加用户", "Add user"],
  edit_zones: ["编辑区域", "Edit zones"],
  zone_editor: ["区域编辑", "Zone editor"],
  zone_help: ["在画面上点击添加顶点，点击第一个顶点闭合；拖动顶点修改；选中顶点后按 Delete 删除。", "Click on the picture to add vertices, click the first vertex to close; drag vertices to move them; Delete removes the selected vertex."],
  new_zone: ["新建区域", "New zone"],
  delete_zone: ["删除区域", "Delete zone"],
  zone_id: ["区域编号", "Zone id"],
  zone_kind: ["类型", "Kind"],
  dwell_s: ["停留（秒）", "Dwell (s)"],
  clear_s: ["消除（秒）", "Clear (s)"],
  realarm_s: ["重复告警（秒）", "Re-alarm (s)"],
  min_score: ["最低置信度", "Minimum score"],
  labels: ["目标类别", "Labels"],
  push_to_edge: ["下发到边缘节点", "Push to edge"],
  pushing: ["下发中…", "Pushing…"],
  applied_version: ["边缘节点已应用版本", "Edge applied version"],
  edge_errors: ["边缘节点拒绝", "Edge refused"],
  no_snapshot: ["暂无快照", "No snapshot yet"],
  vertices: ["顶点", "vertices"],
  unsaved: ["未下发的修改", "changes not pushed yet"],
  forbidden: ["无权访问此页面", "You cannot open this page"],
  labels_title: ["标注（训练样本）", "Labels (training sample)"],
  label_editor: ["标注编辑", "Label editor"],
  label_help: ["在原始画面上拖动新建框；拖动框移动，拖动角点调整大小；可改类别或删除。保存后用于训练模型。", "Drag on the raw frame to add a box; drag a box to move it, its corner to resize; relabel or delete. Saved labels train the model."],
  raw_frame: ["原始画面", "Raw frame"],
  label: ["类别", "Label"],
  delete: ["删除", "Delete"],
  save_labels: ["保存标注", "Save labels"],
  labels_saved: ["标注已保存", "Labels saved"],
  as_detected: ["尚未审核：按检测结果显示", "Not reviewed yet: boxes as detected"],
  verdict_confirmed: ["已确认", "Confirmed"],
  verdict_dismissed: ["已驳回（负样本）", "Dismissed (hard negative)"],
  verdict_edited: ["已编辑", "Edited"],
  models_title: ["检测模型", "Detector models"],
  model: ["模型", "Model"],
  promote: ["上线", "Promote"],
  rollback: ["回滚", "Roll back"],
  model_history: ["变更记录", "History"],
  held_out_recall: ["留出集电动车召回", "Held-out e-bike recall"],
  false_alarm_rate: ["误报率", "False alarm rate"],
  not_found: ["页面不存在", "No such page"],
  error: ["错误", "Error"],
  sec: ["秒", "s"],
  min: ["分", "min"],
  hour: ["小时", "h"],
  day: ["天", "d"],
};

const ENUMS = {
  state: {
    received: ["已接收", "received"], triage: ["待审核", "triage"], registered: ["已立案", "registered"],
    dispatched: ["已派遣", "dispatched"], in_progress: ["处置中", "in progress"], feedback: ["已反馈", "feedback"],
    checking: ["核查中", "checking"], closed: ["已结案", "closed"], returned: ["已退回", "returned"],
  },
  condition: { active: ["持续中", "active"], cleared: ["已消除", "cleared"] },
  hazard: {
    fire_lane_blocked: ["消防通道占用", "Fire lane blocked"], ebike_indoor: ["电动车入户/入梯", "E-bike indoors"],
    zone_occupancy: ["区域异常聚集/闯入", "Zone occupancy"], camera_offline: ["摄像头离线", "Camera offline"],
    camera_tampered: ["摄像头遮挡/移位", "Camera tampered"],
  },
  color: { green: ["正常", "on time"], yellow: ["临期", "due soon"], red: ["超期", "overdue"], blue: ["蓝", "blue"] },
  index: { red: ["红", "red"], yellow: ["黄", "yellow"], blue: ["蓝", "blue"] },
  health: { online: ["在线", "online"], offline: ["离线", "offline"], tampered: ["遮挡", "tampered"] },
  role: {
    admin: ["管理员", "admin"], monitor: ["值班员", "monitor"], supervisor: ["督查员", "supervisor"],
    grid_chief: ["网格长", "grid chief"], grid_worker: ["网格员", "grid worker"], unit: ["处置单位", "unit"],
  },
  kind: { fire_lane: ["消防通道", "fire lane"], indoor: ["室内", "indoor"], occupancy: ["区域占用", "occupancy"] },
  close_reason: {
    fixed: ["已整改", "fixed"], false_alarm: ["误报", "false alarm"], duplicate: ["重复", "duplicate"],
    transferred: ["转办", "transferred"], forced: ["强制", "forced"], suppressed: ["静默", "suppressed"],
  },
  stage: { dispatch: ["派遣", "dispatch"], accept: ["签收", "accept"], handle: ["处置", "handle"], check: ["核查", "check"], triage: ["审核", "triage"] },
};

let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "zh";
const listeners = new Set();

export function getLang() {
  return lang;
}

export function setLang(next) {
  lang = next === "en" ? "en" : "zh";
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

export function t(key) {
  const pair = TEXT[key];
  if (!pair) return key;
  return pair[lang === "zh" ? 0 : 1];
}

/** A value from the API (state, hazard, role…) in the user's language; unknown values pass through. */
export function label(kind, value) {
  if (value === null || value === undefined || value === "") return "—";
  const pair = ENUMS[kind]?.[value];
  return pair ? pair[lang === "zh" ? 0 : 1] : String(value);
}

export function locale() {
  return lang === "zh" ? "zh-CN" : "en-GB";
}

export function fmtTime(ts) {
  if (!ts) return "—";
  return new Date(ts).toLocaleString(locale(), { hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(Math.round(seconds));
  if (s < 60) return `${sign}${s}${t("sec")}`;
  if (s < 3600) return `${sign}${Math.floor(s / 60)}${t("min")}${s % 60 ? ` ${s % 60}${t("sec")}` : ""}`;
  if (s < 86400) return `${sign}${Math.floor(s / 3600)}${t("hour")} ${Math.floor((s % 3600) / 60)}${t("min")}`;
  return `${sign}${Math.floor(s / 86400)}${t("day")} ${Math.floor((s % 86400) / 3600)}${t("hour")}`;
}

export function fmtPercent(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}

document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
