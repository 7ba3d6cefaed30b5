"""E-mail as an outlet: a mailing list is a channel, a prompt's mail is a thread, replies are mails.

:mod:`.settings` (``[email]``), :mod:`.ids` (Message-IDs and reply tokens), :mod:`.compose` (the
mails Popup sends), :mod:`.parse` (reading a mail: which prompt, who, what they said),
:mod:`.quotes` (cutting quoted text, signatures and list footers), :mod:`.smtp` (sending),
:mod:`.imap` (reading the folder) and :mod:`.adapter` (the port the engine talks to).
"""
