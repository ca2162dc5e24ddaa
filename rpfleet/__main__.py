from rpfleet.cli import main

raise SystemExit(main())
