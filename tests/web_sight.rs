//! The web client as a person sees it, in real Chromium at a desktop's and a phone's
//! size: what is on the screen at each moment a person would look (not only what is in
//! the DOM), the keyboard alone, and an accessibility audit (axe-core). Screenshots of
//! each state are kept for review; the test notes say where.

mod common;

use common::browser::{Browser, Page, js, prepare};
use common::sight::{DESKTOP, PHONE, Size, screenshot_dir};
use common::{Client, Relay, note};

const SIZES: [Size; 2] = [DESKTOP, PHONE];

fn testid(id: &str) -> String {
    format!("[data-testid={id}]")
}

/// The newest line of the conversation.
const NEWEST: &str = "#messages > li:last-child";

/// Looks at the chat as a person keeping it open would, at `size`: the conversation fills
/// the window with the newest line in view, the room and the relay are named, and the
/// controls are at hand; the members are beside the messages, or a tap away on a phone.
async fn look_at_the_chat(browser: &mut Browser, page: &Page, size: Size, shot: &str) {
    browser.resize(page, size).await;
    for (selector, what) in [
        (NEWEST.to_owned(), "the newest message"),
        (testid("where"), "the room and name"),
        (testid("relay-state"), "the relay's state"),
        (testid("message-input"), "the message box"),
        (testid("send"), "the send button"),
        (testid("send-file"), "the file button"),
        (testid("call"), "the call button"),
    ] {
        browser.assert_displayed(page, &selector, &format!("{what} at {} size", size.name)).await;
    }
    for (selector, what) in
        [(testid("join-form"), "the join form"), (testid("secret-form"), "the secret prompt")]
    {
        browser.assert_not_displayed(page, &selector, &format!("{what} while chatting")).await;
    }
    let share = "document.querySelector('#messages').getBoundingClientRect().height / innerHeight";
    let share = browser.eval(page, share).await.as_f64().expect("a number");
    assert!(share > 0.5, "the conversation fills {:.0}% of the window at {} size", share * 100.0, size.name);

    let members = format!("{} > li", testid("members"));
    if size.mobile {
        browser.assert_not_displayed(page, &members, "the members over the chat before asking").await;
        browser.assert_displayed(page, &testid("members-toggle"), "the members button").await;
        browser.eval(page, "document.querySelector('[data-testid=members-toggle]').click()").await;
        browser.assert_displayed(page, &members, "the members, one tap away").await;
        browser.screenshot(page, &format!("{shot}-{}-members", size.name)).await;
        browser.press(page, "Escape", false).await;
        browser.assert_not_displayed(page, &members, "the members after Escape").await;
    } else {
        browser.assert_displayed(page, &members, "the members beside the messages").await;
        browser.assert_not_displayed(page, &testid("members-toggle"), "a members button on a desktop").await;
    }
    browser.screenshot(page, &format!("{shot}-{}", size.name)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_sees_each_state_of_the_web_client_at_desktop_and_phone_sizes() {
    let test = "a_person_sees_each_state_of_the_web_client_at_desktop_and_phone_sizes";
    let Some(ns) = prepare(test) else { return };
    let relay = Relay::start_in(&ns.name, &["--listen", "127.0.0.1:0"]).await;
    let mut browser = Browser::launch(&ns.name).await;
    let page = browser.open(&format!("http://{}/", relay.addr)).await;

    // Before joining: the form, and nothing of the chat.
    for size in SIZES {
        browser.resize(&page, size).await;
        for id in ["join-form", "room-input", "name-input", "join"] {
            browser.assert_displayed(&page, &testid(id), &format!("{id} at {} size", size.name)).await;
        }
        browser.assert_not_displayed(&page, &testid("chat"), "the chat before joining").await;
        browser.assert_not_displayed(&page, &testid("secret-form"), "the secret prompt unasked").await;
        browser.screenshot(&page, &format!("join-{}", size.name)).await;
    }
    browser.assert_accessible(&page, "on the join form").await;

    // Joining with the keyboard alone, in the order the form reads.
    browser.resize(&page, DESKTOP).await;
    assert_eq!(
        browser.tab_order(&page, 3).await,
        ["room-input", "name-input", "join"],
        "focus follows the page"
    );
    browser.tab_order(&page, 1).await;
    browser.type_text(&page, "look").await;
    browser.press(&page, "Tab", false).await;
    browser.type_text(&page, "ann").await;
    browser.press(&page, "Enter", false).await;
    browser.relay_state(&page, "ok").await;
    browser.assert_not_displayed(&page, &testid("join-form"), "the join form after joining").await;
    let where_ = browser.eval(&page, "document.querySelector('[data-testid=where]').textContent").await;
    assert_eq!(where_, "#look as ann");

    let mut bob = Client::start_in(&ns.name, &relay.url, "look", "bob", &["--commands"]);
    let mut carol = Client::start_in(&ns.name, &relay.url, "look", "carol", &[]);
    for name in ["bob", "carol"] {
        let member = format!("[data-testid=member][data-name={}][data-state=connected]", js(name));
        browser.wait_for(&page, &format!("!!document.querySelector('{member}')"), name).await;
    }
    bob.expect_count("connected", 2).await;
    carol.expect_count("connected", 2).await;

    // A conversation longer than the window. The message box has the focus after
    // joining: Enter sends, Shift-Enter starts a new line.
    for i in 1..=12 {
        bob.say(&format!("bob's line {i}: the build is green on every platform we ship")).await;
        carol.say(&format!("carol's line {i}")).await;
    }
    browser
        .wait_for(
            &page,
            "document.querySelectorAll('[data-testid=message][data-from=carol]').length === 12",
            "lines",
        )
        .await;
    browser.type_text(&page, "two lines:").await;
    browser.press(&page, "Enter", true).await;
    browser.type_text(&page, "the second").await;
    browser.press(&page, "Enter", false).await;
    let mine = "[data-testid=message][data-from=ann]";
    browser.wait_for(&page, &format!("!!document.querySelector('{mine}')"), "ann's message").await;
    let text = format!("document.querySelector('{mine} [data-testid=message-text]').textContent");
    assert_eq!(browser.eval(&page, &text).await, "two lines:\nthe second", "Shift-Enter adds a line");
    let mine_style = format!(
        "(() => {{ const own = getComputedStyle(document.querySelector('{mine}'));
           const other = getComputedStyle(document.querySelector('[data-testid=message][data-from=bob]'));
           return own.backgroundColor !== other.backgroundColor && own.borderLeftColor !== other.borderLeftColor; }})()"
    );
    assert_eq!(browser.eval(&page, &mine_style).await, true, "own lines look different from others'");
    for terminal in [&mut bob, &mut carol] {
        let got = terminal.expect(|l| l["type"] == "message" && l["from"] == "ann", "ann's message").await;
        assert_eq!(got["text"], "two lines:\nthe second");
    }
    for size in SIZES {
        look_at_the_chat(&mut browser, &page, size, "chat").await;
    }
    browser.resize(&page, DESKTOP).await;
    for dark in [false, true] {
        browser.dark(&page, dark).await;
        let scheme = if dark { "dark" } else { "light" };
        browser.assert_accessible(&page, &format!("while chatting, in {scheme} mode")).await;
        browser.screenshot(&page, &format!("chat-desktop-{scheme}")).await;
    }
    browser.dark(&page, false).await;

    // A reader who scrolled up stays where they are, and is told that newer lines wait.
    browser.eval(&page, "document.querySelector('#messages').scrollTop = 0").await;
    bob.say("news while you read back").await;
    browser
        .wait_for(&page, "[...document.querySelectorAll('[data-testid=message-text]')].some(e => e.textContent === 'news while you read back')", "the news")
        .await;
    assert_eq!(
        browser.eval(&page, "document.querySelector('#messages').scrollTop").await,
        0,
        "not pulled down"
    );
    browser.assert_displayed(&page, &testid("newer"), "the new-messages button").await;
    browser.eval(&page, "document.querySelector('[data-testid=newer]').click()").await;
    browser.assert_displayed(&page, NEWEST, "the newest message after the button").await;
    browser.assert_not_displayed(&page, &testid("newer"), "the button once at the newest").await;

    // A file offer: the person sees who offers what, and the buttons to answer.
    let outbox = common::files::TempDir::new("sight");
    let file = common::files::random_file(outbox.path(), "notes.txt", 4096, 3);
    bob.say(&format!("/send ann {}", file.display())).await;
    let offer = "[data-testid=transfer][data-direction=in][data-state=asking]";
    for size in SIZES {
        browser.resize(&page, size).await;
        for (part, what) in [
            ("", "the offer"),
            (" [data-testid=file-accept]", "Accept"),
            (" [data-testid=file-decline]", "Decline"),
        ] {
            browser
                .assert_displayed(&page, &format!("{offer}{part}"), &format!("{what} at {} size", size.name))
                .await;
        }
        browser.screenshot(&page, &format!("file-offer-{}", size.name)).await;
    }
    browser.assert_accessible(&page, "with a file offer").await;
    browser
        .eval(&page, &format!("document.querySelector('{offer} [data-testid=file-decline]').click()"))
        .await;
    let answer = bob.expect(|l| l["type"] == "file-failed", "ann's answer").await;
    assert_eq!(answer["kind"], "declined", "{answer}");

    // A call: the control says so and stays at hand.
    browser.eval(&page, "document.querySelector('[data-testid=call]').click()").await;
    browser
        .wait_for(&page, "document.querySelector('[data-testid=call]').dataset.state === 'on'", "a call")
        .await;
    for size in SIZES {
        look_at_the_chat(&mut browser, &page, size, "call").await;
    }
    assert_eq!(
        browser.eval(&page, "document.querySelector('[data-testid=call]').textContent").await,
        "Hang up"
    );
    browser.assert_accessible(&page, "in a call").await;
    browser.eval(&page, "document.querySelector('[data-testid=call]').click()").await;

    note(&format!("screenshots of the web client, for review: {}", screenshot_dir().display()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_prompt_shows_only_while_the_relay_asks() {
    let Some(ns) = prepare("the_secret_prompt_shows_only_while_the_relay_asks") else { return };
    let relay = Relay::start_in(&ns.name, &["--listen", "127.0.0.1:0", "--room-secret", "s3cret"]).await;
    let mut browser = Browser::launch(&ns.name).await;
    let page = browser.open(&format!("http://{}/?room=locked&name=ann", relay.addr)).await;
    for size in SIZES {
        browser.resize(&page, size).await;
        for id in ["secret-form", "secret-input", "secret-submit"] {
            browser.assert_displayed(&page, &testid(id), &format!("{id} at {} size", size.name)).await;
        }
        browser.assert_not_displayed(&page, &testid("join-form"), "the join form under the prompt").await;
        browser.assert_not_displayed(&page, &testid("chat"), "the chat before the secret").await;
        browser.screenshot(&page, &format!("secret-{}", size.name)).await;
    }
    browser.assert_accessible(&page, "at the secret prompt").await;

    // The keyboard alone: the prompt has the focus; typing and Enter answer it.
    browser.type_text(&page, "s3cret").await;
    browser.press(&page, "Enter", false).await;
    browser.relay_state(&page, "ok").await;
    browser.assert_not_displayed(&page, &testid("secret-form"), "the secret prompt once answered").await;
    browser.assert_displayed(&page, &testid("message-input"), "the message box after the secret").await;
}
