// Mayak's pages in Azerbaijani and English: the words, and numbers/dates in the chosen
// language's format (Intl). Loaded before each page's script; exposes window.I18N.
(() => {
  const WORDS = {
    en: {
      title: "Mayak — product analytics", site: "Site", token: "API token", save: "Save",
      period: "Period", today: "Today", yesterday: "Yesterday", "7d": "7 days", "30d": "30 days",
      month: "This month", lastmonth: "Last month", "12mo": "12 months", custom: "Custom",
      compare: "Compare with previous period", from: "from", to: "to", filters: "Filters",
      visitors: "Visitors", visits: "Visits", pageviews: "Pageviews",
      views_per_visit: "Views per visit", bounce_rate: "Bounce rate",
      visit_duration: "Visit duration", previous: "previous period", live: "now",
      live_visitors: "visitors in the last 5 minutes", reading: "Being read now",
      main: "Visitors", pages: "Pages", top: "Top", entry: "Entry", exit: "Exit",
      sections: "Sections", sources: "Channels and sources", channel: "Channels",
      source: "Sources", referrer_domain: "Referrers", utm_source: "UTM source",
      utm_medium: "UTM medium", utm_campaign: "UTM campaign", places: "Countries and ISPs",
      country: "Countries", isp: "ISPs", devices: "Devices and software",
      device_type: "Device types", browser: "Browsers", browser_version: "Browser versions",
      os: "Operating systems", os_version: "OS versions", events: "Goals and custom events",
      event_name: "Custom events", prop: "Break down by prop", outbound: "Outbound links",
      services: "Service requests", heat: "Hour of day × weekday ({tz} time)",
      funnel: "Funnel", funnel_steps: "Steps, one per line: page:/path* or event:name",
      show: "Show", csv: "CSV", archive: "Download the whole view (ZIP)",
      time_on_page: "time on page", scroll_depth: "scroll", section_seconds: "dwell",
      service_requests: "requests", count: "events", goals: "Goals",
      conversions: "conversions", conversion_rate: "rate", from_first: "of first step", none: "(none)",
      sampled: "Estimated from a {share} sample of visits (a busy period).",
      empty: "No data in this period. Choose a longer period, or check that the beacon is on the site.",
      need_token: "Paste an API token with the product role (create one: mayak token add --name NAME --role product).",
      forbidden: "This token's role may not see the product page: use a product or admin token.",
      unknown_site: "Unknown site.", unavailable: "Not available in this version.",
      weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], pp: "pp",
      nav_product: "Product", nav_marketing: "Marketing", nav_research: "Research", nav_admin: "Admin",
      need_token_any: "Paste an API token (create one: mayak token add --name NAME --role ROLE).",
      role_forbidden: "This token's role may not do this:", page_forbidden: "The role {role} may not use this page; it may use: {pages}.",
      no_rows: "No rows for this question.", email_opens: "E-mail opens", openers: "Unique openers",
      campaigns: "E-mail campaigns (sent, opens, unique opens, open rate)", register_send: "Register a send",
      campaign: "campaign", sent: "messages sent", sent_on: "on", register: "Register",
      ask_title: "A private question (user-level differential privacy; each answer spends budget)",
      dimensions: "dimensions", metrics: "metrics", epsilon: "epsilon", ask: "Ask", ask_csv: "Ask as CSV",
      my_budget: "My budget", audit: "Recent API calls (who, role, endpoint, cells, status)",
      budgets: "Researchers' privacy budgets", researcher: "researcher", epsilon_month: "epsilon per month",
      set: "Set", customer_title: "A portal customer's data (export, or erase and opt out)",
      customer: "customer id", export: "Export", erase: "Erase and opt out",
      erase_confirm: "Erase every event of this customer and opt them out? This cannot be undone.",
    },
    az: {
      title: "Mayak — məhsul analitikası", site: "Sayt", token: "API tokeni", save: "Yadda saxla",
      period: "Dövr", today: "Bu gün", yesterday: "Dünən", "7d": "7 gün", "30d": "30 gün",
      month: "Bu ay", lastmonth: "Keçən ay", "12mo": "12 ay", custom: "Seçilmiş",
      compare: "Əvvəlki dövrlə müqayisə", from: "başlanğıc", to: "son", filters: "Filtrlər",
      visitors: "Ziyarətçilər", visits: "Səfərlər", pageviews: "Səhifə baxışları",
      views_per_visit: "Səfər başına baxış", bounce_rate: "İmtina nisbəti",
      visit_duration: "Səfər müddəti", previous: "əvvəlki dövr", live: "indi",
      live_visitors: "son 5 dəqiqədə ziyarətçi", reading: "İndi oxunur",
      main: "Ziyarətçilər", pages: "Səhifələr", top: "Ən çox", entry: "Giriş", exit: "Çıxış",
      sections: "Bölmələr", sources: "Kanallar və mənbələr", channel: "Kanallar",
      source: "Mənbələr", referrer_domain: "Yönləndirənlər", utm_source: "UTM mənbə",
      utm_medium: "UTM vasitə", utm_campaign: "UTM kampaniya", places: "Ölkələr və provayderlər",
      country: "Ölkələr", isp: "Provayderlər", devices: "Cihazlar və proqramlar",
      device_type: "Cihaz növləri", browser: "Brauzerlər", browser_version: "Brauzer versiyaları",
      os: "Əməliyyat sistemləri", os_version: "ƏS versiyaları", events: "Məqsədlər və hadisələr",
      event_name: "Hadisələr", prop: "Xassəyə görə böl", outbound: "Xarici keçidlər",
      services: "Xidmət müraciətləri", heat: "Günün saatı × həftənin günü ({tz} vaxtı)",
      funnel: "Huni", funnel_steps: "Addımlar, hər sətirdə bir: page:/yol* və ya event:ad",
      show: "Göstər", csv: "CSV", archive: "Bütün görünüşü yüklə (ZIP)",
      time_on_page: "səhifədə vaxt", scroll_depth: "sürüşdürmə", section_seconds: "müddət",
      service_requests: "müraciət", count: "hadisə", goals: "Məqsədlər",
      conversions: "konversiya", conversion_rate: "nisbət", from_first: "ilk addımdan", none: "(yoxdur)",
      sampled: "Səfərlərin {share} nümunəsi əsasında təxmin edilib (sıx dövr).",
      empty: "Bu dövrdə məlumat yoxdur. Daha uzun dövr seçin və ya saytda mayakın olduğunu yoxlayın.",
      need_token: "Məhsul rolu olan API tokenini daxil edin (yaratmaq: mayak token add --name AD --role product).",
      forbidden: "Bu tokenin rolu məhsul səhifəsini görə bilməz: product və ya admin tokeni istifadə edin.",
      unknown_site: "Naməlum sayt.", unavailable: "Bu versiyada yoxdur.",
      weekdays: ["B.e", "Ç.a", "Ç", "C.a", "C", "Ş", "B"], pp: "f.b.",
      nav_product: "Məhsul", nav_marketing: "Marketinq", nav_research: "Tədqiqat", nav_admin: "İdarəetmə",
      need_token_any: "API tokenini daxil edin (yaratmaq: mayak token add --name AD --role ROL).",
      role_forbidden: "Bu tokenin rolu bunu edə bilməz:", page_forbidden: "{role} rolu bu səhifədən istifadə edə bilməz; istifadə edə bildiyi: {pages}.",
      no_rows: "Bu sual üçün sətir yoxdur.", email_opens: "E-poçt açılışları", openers: "Unikal açanlar",
      campaigns: "E-poçt kampaniyaları (göndərilən, açılış, unikal açılış, açılma nisbəti)", register_send: "Göndərişi qeyd et",
      campaign: "kampaniya", sent: "göndərilən məktub", sent_on: "tarix", register: "Qeyd et",
      ask_title: "Məxfi sual (istifadəçi səviyyəsində diferensial məxfilik; hər cavab büdcədən xərcləyir)",
      dimensions: "ölçülər", metrics: "göstəricilər", epsilon: "epsilon", ask: "Soruş", ask_csv: "CSV kimi soruş",
      my_budget: "Büdcəm", audit: "Son API çağırışları (kim, rol, endpoint, xanalar, status)",
      budgets: "Tədqiqatçıların məxfilik büdcələri", researcher: "tədqiqatçı", epsilon_month: "aylıq epsilon",
      set: "Təyin et", customer_title: "Portal müştərisinin məlumatı (ixrac, və ya silmə və imtina)",
      customer: "müştəri id", export: "İxrac et", erase: "Sil və imtina et",
      erase_confirm: "Bu müştərinin bütün hadisələri silinsin və o, izləmədən çıxarılsın? Bu geri qaytarılmır.",
    },
  };
  const LOCALES = {en: "en-GB", az: "az-Latn-AZ"};
  // the report time zone: the API's (GET /api/me says it); the last one seen until it answers
  let TZ = localStorage.getItem("mayak-tz") || "UTC";
  let lang = "en";
  const I18N = {
    get lang() { return lang; },
    set(l) { lang = WORDS[l] ? l : "en"; document.documentElement.lang = lang; },
    t(key) {
      const word = WORDS[lang][key] ?? WORDS.en[key] ?? key;
      return typeof word === "string" ? word.replace("{tz}", TZ) : word;
    },
    // true when the zone changed (the page re-resolves its dates)
    zone(name) {
      if (!name || name === TZ) return false;
      TZ = name; localStorage.setItem("mayak-tz", name); return true;
    },
    // the zone's UTC offset ("+04:00") on a day, for the instants of its midnights
    offset(day) {
      const name = new Intl.DateTimeFormat("en-US", {timeZone: TZ, timeZoneName: "longOffset"})
        .formatToParts(new Date(`${day}T12:00:00Z`)).find((p) => p.type === "timeZoneName").value;
      return name === "GMT" ? "+00:00" : name.slice(3);
    },
    number: (n, digits = 0) => n == null ? "—" : new Intl.NumberFormat(LOCALES[lang],
      {maximumFractionDigits: digits}).format(n),
    percent: (f, digits = 1) => f == null ? "—" : new Intl.NumberFormat(LOCALES[lang],
      {style: "percent", maximumFractionDigits: digits}).format(f),
    duration: (s) => s == null ? "—" :
      `${Math.floor(Math.round(s) / 60)}:${String(Math.round(s) % 60).padStart(2, "0")}`,
    date: (iso) => new Intl.DateTimeFormat(LOCALES[lang], {day: "numeric", month: "short",
      year: "numeric", timeZone: "UTC"}).format(new Date(iso + "T00:00:00Z")),
    hour: (iso) => new Intl.DateTimeFormat(LOCALES[lang], {day: "numeric", month: "short",
      hour: "2-digit", minute: "2-digit", timeZone: TZ}).format(new Date(iso)),
    tick: (seconds, hourly) => new Intl.DateTimeFormat(LOCALES[lang], hourly
      ? {day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: TZ}
      : {day: "numeric", month: "short", timeZone: TZ}).format(new Date(seconds * 1000)),
    get TZ() { return TZ; },
  };
  window.I18N = I18N;
})();
