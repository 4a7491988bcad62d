import { registry } from "@web/core/registry";

const openPreferences = [
    {
        content: "Open the user menu",
        trigger: ".o_user_menu button",
        run: "click",
    },
    {
        content: "Open Preferences",
        // the user menu item is "settings" on 18.0, "preferences" on 19.0
        trigger: "[data-menu=settings], [data-menu=preferences]",
        run: "click",
    },
    {
        content: "Preferences dialog is open",
        trigger: ".modal .o_form_view .o_notebook",
    },
];

/** A member of Calendar Integration sees the External tab, both integrations and the one-way note. */
registry.category("web_tour.tours").add("impact_calendar_preferences_member", {
    steps: () => [
        ...openPreferences,
        {
            content: "Open the External tab",
            trigger: ".modal .o_notebook .nav-link:contains(External)",
            run: "click",
        },
        {
            content: "The External Calendar section says it is one-way",
            trigger: ".modal .o_notebook .tab-pane.active:contains(External Calendar):contains(one-way)",
        },
        {
            content: "Google Calendar can be connected",
            trigger: ".modal button[name=action_impact_calendar_connect_google]:contains(Connect Google Calendar)",
        },
        {
            content: "Outlook / Office 365 can be connected",
            trigger: ".modal button[name=action_impact_calendar_connect_microsoft]:contains(Connect Outlook / Office 365)",
        },
    ],
});

/** Someone outside the group sees nothing of it. */
registry.category("web_tour.tours").add("impact_calendar_preferences_outsider", {
    steps: () => [
        ...openPreferences,
        {
            content: "The Preferences tab is there, the External tab is not",
            trigger: ".modal .o_notebook:has(.nav-link:contains(Preferences)):not(:has(.nav-link:contains(External)))",
        },
    ],
});
