namespace Baton.Gateway.Operations;

/// <summary>
/// The status page: a self-contained HTML page that reads <c>status.json</c> every second and shows each
/// destination (health, availability, drain, incarnation, restore check, sessions, recent failovers), the store tiers and
/// the latest session moves.
/// </summary>
internal static class StatusPage
{
    public const string Html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Baton gateway status</title>
        <style>
          body { font: 14px system-ui, sans-serif; margin: 2em; }
          table { border-collapse: collapse; margin: .5em 0 1.5em; }
          th, td { border: 1px solid #ccc; padding: 3px 10px; text-align: left; }
          .Healthy, .up { color: #1a7f37; } .Unhealthy, .down { color: #cf222e; font-weight: bold; } .Unknown { color: #6e7781; }
          #updated { color: #6e7781; }
        </style>
        </head>
        <body>
        <h1>Baton gateway</h1>
        <p id="updated">Loading status…</p>
        <noscript><p>This page needs JavaScript; the same data is at <a href="status.json">status.json</a>.</p></noscript>
        <div id="clusters"></div>
        <h2>Store</h2>
        <table id="store"><tbody></tbody></table>
        <h2>Recent session moves</h2>
        <table id="failovers"><thead><tr><th>at</th><th>cluster</th><th>session (hash)</th><th>from</th><th>to</th><th>reason</th></tr></thead><tbody></tbody></table>
        <script>
        "use strict";
        function cell(row, text, cls) {
          const td = row.insertCell();
          td.textContent = text;
          if (cls) { td.className = cls; }
          return td;
        }
        function render(s) {
          document.getElementById("updated").textContent =
            "Updated " + new Date(s.generated).toLocaleTimeString() + " · " + (s.ready ? "ready" : "NOT READY") + " · " + s.sessions + " live sessions with state, " + s.anonymous_sessions + " without";
          const clusters = document.getElementById("clusters");
          clusters.replaceChildren();
          for (const c of s.clusters) {
            const h = document.createElement("h2");
            h.textContent = "Cluster " + c.id;
            clusters.appendChild(h);
            const table = document.createElement("table");
            table.className = "destinations";
            table.dataset.cluster = c.id;
            const head = table.createTHead().insertRow();
            for (const t of ["destination", "address", "active health", "passive health", "available", "draining", "incarnation", "restore check", "sessions", "failovers (5 min)"]) {
              const th = document.createElement("th"); th.textContent = t; head.appendChild(th);
            }
            const body = table.createTBody();
            for (const d of c.destinations) {
              const row = body.insertRow();
              row.dataset.destination = d.id;
              cell(row, d.id, "id");
              cell(row, d.address, "address");
              cell(row, d.health_active, "health-active " + d.health_active);
              cell(row, d.health_passive, "health-passive " + d.health_passive);
              cell(row, d.available ? "yes" : "no", "available " + (d.available ? "up" : "down"));
              cell(row, d.draining ? "draining" : "", "draining");
              cell(row, d.incarnation || "", "incarnation");
              cell(row, d.restore_check || "", "restore-check" + (d.restore_check && d.restore_check !== "accepted" ? " down" : ""));
              cell(row, String(d.sessions), "sessions");
              cell(row, String(d.failovers_5m), "failovers");
            }
            clusters.appendChild(table);
          }
          const store = document.querySelector("#store tbody");
          store.replaceChildren();
          const redis = s.store.redis, journal = s.store.journal;
          const rows = [
            ["Redis", !redis.configured ? "not configured (journal only)" : redis.connected && !redis.circuit_open ? "up" : "down", redis.configured && (!redis.connected || redis.circuit_open) ? "down" : "up"],
            ["Journal", journal.path + " · " + (journal.size_bytes / 1048576).toFixed(1) + " MiB · last commit " + (journal.last_commit ? new Date(journal.last_commit).toLocaleTimeString() : "none yet") + " · queue " + journal.queue_length + " · lag " + journal.lag_ms.toFixed(0) + " ms" + (journal.quarantined_to ? " · quarantined " + journal.quarantined_to : ""), ""]
          ];
          for (const [name, text, cls] of rows) {
            const row = store.insertRow();
            row.dataset.tier = name.toLowerCase();
            cell(row, name);
            cell(row, text, cls);
          }
          const failovers = document.querySelector("#failovers tbody");
          failovers.replaceChildren();
          for (const e of s.recent_failovers) {
            const row = failovers.insertRow();
            cell(row, new Date(e.at).toLocaleTimeString());
            cell(row, e.cluster);
            cell(row, e.session_hash);
            cell(row, e.from, "from");
            cell(row, e.to, "to");
            cell(row, e.reason);
          }
        }
        async function refresh() {
          try {
            const response = await fetch("status.json", { cache: "no-store" });
            if (response.ok) { render(await response.json()); }
            else { document.getElementById("updated").textContent = "status.json answered " + response.status; }
          } catch (e) {
            document.getElementById("updated").textContent = "The gateway does not answer: " + e;
          }
        }
        refresh();
        setInterval(refresh, 1000);
        </script>
        </body>
        </html>
        """;
}
