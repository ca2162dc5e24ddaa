"""Agent releases: signed artifacts (`artifact`), release keys (`keys`), building one
from the working tree (`build`), signing it offline (`signing`) and the
`rpfleet release` command (`cli`). See docs/updates.md."""
