from ninja import Router

router = Router(tags=["circuits"])
