"""Reports: KPIs, the KPI chart and Prometheus collector, the App Home, reminders and the weekly digest."""
